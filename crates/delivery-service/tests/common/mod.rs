//! What the delivery-service test targets share: the call trait the conformance suite runs
//! over (the HTTP layer implements it for its client), the backends, PostgreSQL's URL, and
//! MLS members built with mls-engine `Group`s.
#![allow(dead_code)]

pub mod http;
pub mod scenarios;

use std::future::Future;

use delivery_service::{Service, ServiceConfig};
use mls_engine::codec::{
    CipherSuite, Credential, GroupInfo, Lifetime, MlsMessage, MlsMessageBody, Welcome,
};
use mls_engine::crypto::{CryptoProvider as _, RustCrypto, SignatureKeyPair};
use mls_engine::group::{CommitOptions, CommitOutput, Group, GroupConfig, OwnLeaf, Services};
use mls_engine::messages::{HpkeKeySource, KeyPackageBundle, KeyPackageParams, LeafNodeParams};
use vmls_protocol::{
    ClientId, CreateGroup, GroupId, Payload, RegisterDevice, Request, Response, SendRequest,
};

/// The time every test runs at (seconds since the Unix epoch).
pub const NOW: u64 = 1_700_000_000;
/// Cipher suite 1 (X25519, AES-128-GCM, SHA-256, Ed25519).
pub const SUITE: CipherSuite = CipherSuite(1);
/// Ed25519's `SignatureScheme` code.
pub const ED25519: u16 = 0x0807;

static PROVIDER: RustCrypto = RustCrypto;

/// The engine services of test members.
pub fn svc() -> Services<'static> {
    Services::new(&PROVIDER)
}

/// One way to reach the service: in process, or over HTTP.
pub trait Call: Sync {
    /// Makes one request as the authenticated `device`.
    fn call(&self, device: &ClientId, request: Request) -> impl Future<Output = Response> + Send;
}

impl Call for Service {
    fn call(&self, device: &ClientId, request: Request) -> impl Future<Output = Response> + Send {
        let device = device.clone();
        async move { self.handle(&device, request, NOW).await }
    }
}

/// The synchronous in-process entry point, [`delivery_service::InMemoryDeliveryService::handle`]
/// (the device runtime's tests use it).
pub struct InProcess(pub std::sync::Mutex<delivery_service::InMemoryDeliveryService>);

impl Call for InProcess {
    fn call(&self, device: &ClientId, request: Request) -> impl Future<Output = Response> + Send {
        let response = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .handle(device, request, NOW);
        std::future::ready(response)
    }
}

/// [`InProcess`] on a new service.
pub async fn in_process() -> InProcess {
    InProcess(std::sync::Mutex::new(
        delivery_service::InMemoryDeliveryService::new(),
    ))
}

/// A service and what keeps its storage alive.
pub struct Backend {
    /// The service.
    pub service: Service,
    /// The SQLite file's directory.
    pub dir: Option<tempfile::TempDir>,
}

impl Call for Backend {
    fn call(&self, device: &ClientId, request: Request) -> impl Future<Output = Response> + Send {
        self.service.call(device, request)
    }
}

/// The in-memory backend.
pub async fn memory() -> Backend {
    Backend {
        service: Service::open(ServiceConfig::memory()).await.unwrap(),
        dir: None,
    }
}

/// A SQLite file in a fresh temporary directory.
pub async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("vmls.db").display());
    Backend {
        service: Service::open(ServiceConfig::new(&url).unwrap())
            .await
            .unwrap(),
        dir: Some(dir),
    }
}

/// `VMLS_TEST_POSTGRES_URL`, or `None` (loudly) when unset outside CI. With `CI=true` an unset
/// variable is a failure.
pub fn postgres_url() -> Option<String> {
    match std::env::var("VMLS_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but VMLS_TEST_POSTGRES_URL is unset: the PostgreSQL tests must run"
            );
            eprintln!(
                "\n*** VMLS_TEST_POSTGRES_URL is unset: this PostgreSQL test did NOT run ***\n"
            );
            None
        }
    }
}

/// A fresh schema `name` (dropped first) on the test database.
pub async fn fresh_schema(url: &str, name: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("VMLS_TEST_POSTGRES_URL is set but unreachable: {e}"));
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
        .await
        .unwrap();
}

/// A service on schema `name` of the test database (which the caller made fresh).
pub async fn postgres_service(url: &str, name: &str) -> Service {
    let mut config = ServiceConfig::new(url).unwrap();
    config.database = delivery_service::DatabaseUrl::Postgres {
        url: url.to_owned(),
        schema: Some(name.to_owned()),
    };
    Service::open(config).await.unwrap()
}

/// PostgreSQL on a fresh schema named after the test, or `None` when not configured.
pub async fn postgres(test: &str) -> Option<Backend> {
    let url = postgres_url()?;
    let name = format!("vmls_{test}");
    fresh_schema(&url, &name).await;
    Some(Backend {
        service: postgres_service(&url, &name).await,
        dir: None,
    })
}

/// [`ClientId`] of a name.
pub fn id(name: &str) -> ClientId {
    ClientId::new(name)
}

/// Encodes an MLSMessage.
pub fn bytes(message: &MlsMessage) -> Vec<u8> {
    message.to_bytes().unwrap()
}

/// An MLSMessage carrying a GroupInfo, encoded.
pub fn group_info_bytes(info: &GroupInfo) -> Vec<u8> {
    bytes(&MlsMessage::new(MlsMessageBody::GroupInfo(info.clone())))
}

/// An MLSMessage carrying a Welcome, encoded.
pub fn welcome_bytes(welcome: &Welcome) -> Vec<u8> {
    bytes(&MlsMessage::new(MlsMessageBody::Welcome(welcome.clone())))
}

/// A KeyPackage lifetime around [`NOW`].
pub fn lifetime() -> Lifetime {
    Lifetime {
        not_before: NOW - 3600,
        not_after: NOW + 3600 * 24 * 90,
    }
}

/// An MLS identity: a device, or a virtual client (then its emulators share its key).
#[derive(Clone)]
pub struct Identity {
    /// Its name (credential identity).
    pub id: ClientId,
    /// Its signature key pair.
    pub signer: SignatureKeyPair,
}

impl Identity {
    /// A fresh identity.
    pub fn new(name: &str) -> Self {
        let cs = PROVIDER.suite(SUITE).unwrap();
        Self {
            id: id(name),
            signer: cs.signature_generate_key_pair().unwrap(),
        }
    }

    /// Its leaf for creating or joining groups.
    pub fn own_leaf(&self) -> OwnLeaf {
        OwnLeaf {
            params: LeafNodeParams::new(SUITE, Credential::basic(self.id.as_bytes().to_vec())),
            encryption_key: HpkeKeySource::Generate,
            signature_key: self.signer.clone(),
        }
    }

    /// A fresh KeyPackage with the lifetime given.
    pub fn key_package_with(&self, lifetime: Lifetime) -> KeyPackageBundle {
        let cs = PROVIDER.suite(SUITE).unwrap();
        KeyPackageParams::new(
            SUITE,
            Credential::basic(self.id.as_bytes().to_vec()),
            lifetime,
        )
        .build_fresh(cs, &self.signer)
        .unwrap()
    }

    /// A fresh KeyPackage.
    pub fn key_package(&self) -> KeyPackageBundle {
        self.key_package_with(lifetime())
    }

    /// The `register_device` request of this identity as a device.
    pub fn register(&self) -> Request {
        Request::RegisterDevice(RegisterDevice {
            device: self.id.clone(),
            signature_scheme: ED25519,
            signature_key: self.signer.public_key.clone().into(),
        })
    }

    /// A new group with this identity as its one member, and the `create_group` request
    /// (`as_virtual_client` when an emulator creates it for this identity).
    pub fn create_group(&self, group_id: &str, as_virtual_client: bool) -> (Group, Request) {
        self.create_group_with(group_id, as_virtual_client, GroupConfig::default())
    }

    /// [`Self::create_group`] with a group policy.
    pub fn create_group_with(
        &self,
        group_id: &str,
        as_virtual_client: bool,
        config: GroupConfig,
    ) -> (Group, Request) {
        let group = Group::create(
            &svc(),
            config,
            group_id.as_bytes().to_vec(),
            SUITE,
            self.own_leaf(),
            lifetime(),
            vec![],
        )
        .unwrap();
        let info = group.group_info(&svc(), true, true).unwrap();
        let request = Request::CreateGroup(CreateGroup {
            group_id: GroupId::new(group_id),
            as_virtual_client: as_virtual_client.then(|| self.id.clone()),
            group_info: group_info_bytes(&info).into(),
            ratchet_tree: None,
        });
        (group, request)
    }
}

/// An encoded KeyPackage MLSMessage.
pub fn key_package_bytes(bundle: &KeyPackageBundle) -> Payload {
    bytes(&MlsMessage::new(MlsMessageBody::KeyPackage(
        bundle.key_package.clone(),
    )))
    .into()
}

/// Makes a Commit (with the new epoch's GroupInfo) and its send request; the Welcome goes to
/// `welcomed`. The group keeps the Commit pending (merge on acceptance).
pub fn commit(
    group: &mut Group,
    options: CommitOptions,
    welcomed: &[ClientId],
) -> (CommitOutput, SendRequest) {
    let epoch = group.epoch();
    let options = CommitOptions {
        group_info: true,
        external_pub: true,
        ratchet_tree_in_welcome: Some(true),
        ..options
    };
    let out = group.commit(&svc(), options, NOW).unwrap();
    let mut send = SendRequest::commit(epoch, bytes(&out.commit))
        .with_group_info(group_info_bytes(out.group_info.as_ref().unwrap()));
    if let Some(w) = &out.welcome {
        send = send.with_welcome(welcomed.to_vec(), welcome_bytes(w));
    }
    (out, send)
}

/// Joins from a Welcome.
pub fn join(identity: &Identity, welcome: &Welcome, kp: &KeyPackageBundle) -> Group {
    Group::join_from_welcome(
        &svc(),
        GroupConfig::default(),
        welcome,
        kp,
        identity.signer.clone(),
        None,
        NOW,
    )
    .unwrap()
}

/// An application message of `group`.
pub fn application(group: &mut Group, text: &[u8]) -> Vec<u8> {
    bytes(&group.encrypt_application(&svc(), text, b"").unwrap())
}

/// The answer must be `Done`.
#[track_caller]
pub fn done(r: Response) {
    assert_eq!(r, Response::done());
}

/// The answer must be `Accepted`; returns it.
#[track_caller]
pub fn accepted(r: Response) -> vmls_protocol::Accepted {
    match r {
        Response::Accepted(a) => a,
        other => panic!("not accepted: {other:?}"),
    }
}

/// The answer must be a refusal; returns its error.
#[track_caller]
pub fn refused(r: Response) -> vmls_protocol::ServiceError {
    match r {
        Response::Refused(e) => e,
        other => panic!("not refused: {other:?}"),
    }
}
