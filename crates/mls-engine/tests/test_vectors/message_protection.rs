//! `message-protection.json`: PublicMessage and PrivateMessage protection (RFC 9420 §6) of a
//! proposal, a commit and application data sent by leaf 1 of a two-member group.

use mls_engine::codec::{
    decode_exact, encode, CipherSuite, Commit, FramedContent, FramedContentBody, GroupContext,
    MlsMessage, MlsMessageBody, PrivateMessage, Proposal, ProtocolVersion, PublicMessage, Sender,
    VLBytes,
};
use mls_engine::crypto::{Secret, SignaturePrivateKey, SuiteProvider};
use mls_engine::framing::{
    protect_private, protect_public, sign_private, sign_public, unprotect_private,
    unprotect_public, PrivateMessageOptions, PublicMessageError,
};
use mls_engine::schedule::SecretTree;
use serde::Deserialize;

use crate::common::{check_eq, for_supported_suite, hex_bytes, parse, suite, CaseResult, Outcome};

#[derive(Deserialize)]
struct Case {
    cipher_suite: u16,
    #[serde(with = "hex_bytes")]
    group_id: Vec<u8>,
    epoch: u64,
    #[serde(with = "hex_bytes")]
    tree_hash: Vec<u8>,
    #[serde(with = "hex_bytes")]
    confirmed_transcript_hash: Vec<u8>,
    #[serde(with = "hex_bytes")]
    signature_priv: Vec<u8>,
    #[serde(with = "hex_bytes")]
    signature_pub: Vec<u8>,
    #[serde(with = "hex_bytes")]
    encryption_secret: Vec<u8>,
    #[serde(with = "hex_bytes")]
    sender_data_secret: Vec<u8>,
    #[serde(with = "hex_bytes")]
    membership_key: Vec<u8>,
    #[serde(with = "hex_bytes")]
    proposal: Vec<u8>,
    #[serde(with = "hex_bytes")]
    proposal_pub: Vec<u8>,
    #[serde(with = "hex_bytes")]
    proposal_priv: Vec<u8>,
    #[serde(with = "hex_bytes")]
    commit: Vec<u8>,
    #[serde(with = "hex_bytes")]
    commit_pub: Vec<u8>,
    #[serde(with = "hex_bytes")]
    commit_priv: Vec<u8>,
    #[serde(with = "hex_bytes")]
    application: Vec<u8>,
    #[serde(with = "hex_bytes")]
    application_priv: Vec<u8>,
}

/// The sender of every message of the vectors.
const SENDER: u32 = 1;

pub fn run(case: &serde_json::Value) -> Outcome {
    for_supported_suite(case, check)
}

struct Env<'a> {
    cs: &'a dyn SuiteProvider,
    c: &'a Case,
    context: GroupContext,
}

impl Env<'_> {
    fn secret_tree(&self) -> Result<SecretTree, String> {
        SecretTree::new(self.cs, Secret::new(self.c.encryption_secret.clone()), 2)
            .map_err(|e| format!("secret tree: {e}"))
    }

    fn sender_data_secret(&self) -> Secret {
        Secret::new(self.c.sender_data_secret.clone())
    }

    fn membership_key(&self) -> Secret {
        Secret::new(self.c.membership_key.clone())
    }

    fn signature_private_key(&self) -> SignaturePrivateKey {
        SignaturePrivateKey::new(self.c.signature_priv.clone())
    }

    fn content(&self, body: FramedContentBody) -> FramedContent {
        FramedContent {
            group_id: VLBytes::new(self.c.group_id.clone()),
            epoch: self.c.epoch,
            sender: Sender::Member(SENDER),
            authenticated_data: VLBytes::new(Vec::new()),
            body,
        }
    }

    /// Unprotects a PublicMessage and returns its verified body.
    fn open_public(&self, message: PublicMessage) -> Result<FramedContentBody, String> {
        let membership_key = self.membership_key();
        let unverified = unprotect_public(self.cs, message, &self.context, &membership_key)
            .map_err(|e| format!("unprotect public: {e}"))?;
        check_eq("public sender", unverified.sender(), Sender::Member(SENDER))?;
        let verified = unverified
            .verify(self.cs, &self.c.signature_pub)
            .map_err(|e| format!("verify public: {e}"))?;
        Ok(verified.content.body)
    }

    /// Unprotects a PrivateMessage with a fresh secret tree and returns its verified body.
    fn open_private(&self, message: &PrivateMessage) -> Result<FramedContentBody, String> {
        let mut tree = self.secret_tree()?;
        let key = self.c.signature_pub.clone();
        let verified = unprotect_private(
            self.cs,
            message,
            &self.context,
            &mut tree,
            &self.sender_data_secret(),
            |leaf| (leaf == SENDER).then_some(key),
        )
        .map_err(|e| format!("unprotect private: {e}"))?;
        check_eq(
            "private sender",
            verified.content.sender,
            Sender::Member(SENDER),
        )?;
        Ok(verified.content.body)
    }

    /// The vector's `pub` message opens to `body`; `body` protected as a PublicMessage opens
    /// again. `confirmation_tag` is set on commits (any value passes: it is not checked here).
    fn check_public(
        &self,
        what: &str,
        body: &FramedContentBody,
        vector: &[u8],
        confirmation_tag: Option<VLBytes>,
    ) -> CaseResult {
        let message = public_message(vector)?;
        check_eq(
            &format!("{what}_pub body"),
            &self.open_public(message)?,
            body,
        )?;

        let mut signed = sign_public(
            self.cs,
            self.content(body.clone()),
            &self.context,
            &self.signature_private_key(),
        )
        .map_err(|e| format!("{what}: sign public: {e}"))?;
        signed.auth.confirmation_tag = confirmation_tag;
        let membership_key = self.membership_key();
        let protected = protect_public(self.cs, signed, &self.context, Some(&membership_key))
            .map_err(|e| format!("{what}: protect public: {e}"))?;
        let wire = MlsMessage::new(MlsMessageBody::PublicMessage(protected))
            .to_bytes()
            .map_err(|e| format!("{what}: encode: {e}"))?;
        let reopened = self.open_public(public_message(&wire)?)?;
        check_eq(&format!("{what} re-protected public body"), &reopened, body)
    }

    /// The vector's `priv` message opens to `body`; `body` protected as a PrivateMessage with
    /// a fresh secret tree opens again with another fresh tree.
    fn check_private(
        &self,
        what: &str,
        body: &FramedContentBody,
        vector: &[u8],
        confirmation_tag: Option<VLBytes>,
    ) -> CaseResult {
        let message = private_message(vector)?;
        check_eq(
            &format!("{what}_priv body"),
            &self.open_private(&message)?,
            body,
        )?;

        let mut signed = sign_private(
            self.cs,
            self.content(body.clone()),
            &self.context,
            &self.signature_private_key(),
        )
        .map_err(|e| format!("{what}: sign private: {e}"))?;
        signed.auth.confirmation_tag = confirmation_tag;
        let mut sender_tree = self.secret_tree()?;
        let protected = protect_private(
            self.cs,
            &signed,
            &mut sender_tree,
            &self.sender_data_secret(),
            &PrivateMessageOptions::default(),
        )
        .map_err(|e| format!("{what}: protect private: {e}"))?;
        let wire = MlsMessage::new(MlsMessageBody::PrivateMessage(protected))
            .to_bytes()
            .map_err(|e| format!("{what}: encode: {e}"))?;
        let reopened = self.open_private(&private_message(&wire)?)?;
        check_eq(
            &format!("{what} re-protected private body"),
            &reopened,
            body,
        )
    }
}

fn public_message(bytes: &[u8]) -> Result<PublicMessage, String> {
    match MlsMessage::decode(bytes)
        .map_err(|e| format!("decode MLSMessage: {e}"))?
        .body
    {
        MlsMessageBody::PublicMessage(m) => Ok(m),
        other => Err(format!(
            "expected a PublicMessage, got {:?}",
            other.wire_format()
        )),
    }
}

fn private_message(bytes: &[u8]) -> Result<PrivateMessage, String> {
    match MlsMessage::decode(bytes)
        .map_err(|e| format!("decode MLSMessage: {e}"))?
        .body
    {
        MlsMessageBody::PrivateMessage(m) => Ok(m),
        other => Err(format!(
            "expected a PrivateMessage, got {:?}",
            other.wire_format()
        )),
    }
}

fn check(case: &serde_json::Value) -> CaseResult {
    let c: Case = parse(case)?;
    let cs = suite(c.cipher_suite).ok_or("suite vanished")?;
    let context = GroupContext {
        version: ProtocolVersion::MLS10,
        cipher_suite: CipherSuite(c.cipher_suite),
        group_id: VLBytes::new(c.group_id.clone()),
        epoch: c.epoch,
        tree_hash: VLBytes::new(c.tree_hash.clone()),
        confirmed_transcript_hash: VLBytes::new(c.confirmed_transcript_hash.clone()),
        extensions: Vec::new(),
    };
    let env = Env { cs, c: &c, context };

    // Proposal.
    let proposal: Proposal =
        decode_exact(&c.proposal).map_err(|e| format!("decode proposal: {e}"))?;
    let body = FramedContentBody::Proposal(proposal);
    env.check_public("proposal", &body, &c.proposal_pub, None)?;
    env.check_private("proposal", &body, &c.proposal_priv, None)?;

    // Commit; its confirmation tag is taken from the vector's PublicMessage.
    let commit: Commit = decode_exact(&c.commit).map_err(|e| format!("decode commit: {e}"))?;
    check_eq(
        "commit re-encoding",
        encode(&commit).map_err(|e| e.to_string())?,
        c.commit.clone(),
    )?;
    let tag = public_message(&c.commit_pub)?.auth.confirmation_tag;
    if tag.is_none() {
        return Err("commit_pub has no confirmation tag".into());
    }
    let body = FramedContentBody::Commit(commit);
    env.check_public("commit", &body, &c.commit_pub, tag.clone())?;
    env.check_private("commit", &body, &c.commit_priv, tag)?;

    // Application data: never as a PublicMessage.
    let body = FramedContentBody::Application(VLBytes::new(c.application.clone()));
    match sign_public(
        cs,
        env.content(body.clone()),
        &env.context,
        &env.signature_private_key(),
    ) {
        Err(PublicMessageError::ApplicationData) => {}
        Err(e) => return Err(format!("application as public: wrong error {e}")),
        Ok(_) => return Err("application data was protected as a PublicMessage".into()),
    }
    env.check_private("application", &body, &c.application_priv, None)
}
