//! KeyPackages of the virtual client (draft §5.3, §5.5.1; DESIGN §5 row 13): derived and
//! published by this emulator client, or announced by a sibling's `KeyPackageUpload`; and the
//! joins from Welcomes sent to them.

use mls_engine::codec::{KeyPackage, KeyPackageRef, Lifetime, Sender, Welcome};
use mls_engine::crypto::{CipherSuite, SuiteProvider};
use mls_engine::extensions::{AppDataDictionary, LAST_RESORT_KEY_PACKAGE};
use mls_engine::group::{CommitOptions, CommitOutput, Group, Services};
use mls_engine::messages::{key_package_ref, KeyPackageParams};
use tls_codec::VLBytes;

use super::emulation::with_action;
use super::retention::find_epoch;
use super::{EmulatorClient, EmulatorError, LeafState, OwnKeyPackage, UploadedKeyPackage};
use crate::derivation::{
    derivation_info_of, derive_for_receiver, derive_for_sender, derive_from_parts,
    ReceivedDerivation,
};
use crate::epoch::EmulationEpochSecrets;
use crate::wire::{KeyPackageInfo, KeyPackageUpload, VirtualClientAction};

/// Whether `key_package` is marked last-resort (the `last_resort_key_package` component in
/// its `app_data_dictionary` extension). An undecodable dictionary is no mark.
pub(super) fn is_last_resort(key_package: &KeyPackage) -> bool {
    AppDataDictionary::find_in(&key_package.extensions)
        .ok()
        .flatten()
        .is_some_and(|d| d.get(LAST_RESORT_KEY_PACKAGE).is_some())
}

impl EmulatorClient {
    /// A KeyPackage of the virtual client for a higher-level group of `cipher_suite`, from
    /// derived secrets (its leaf carries the `DerivationInfoExtension`). Publish it; a
    /// Welcome sent to it can be joined by this client and by every sibling given it.
    pub fn publish_key_package(
        &mut self,
        services: &Services<'_>,
        cipher_suite: CipherSuite,
        lifetime: Lifetime,
    ) -> Result<KeyPackage, EmulatorError> {
        let params = KeyPackageParams::new(cipher_suite, self.credential.clone(), lifetime);
        self.publish_derived_key_package(services, cipher_suite, params)
    }

    /// A last-resort KeyPackage of the virtual client (RFC 9420 §16.8; marked with the
    /// `last_resort_key_package` component of draft-ietf-mls-extensions-08 §5 in an
    /// `app_data_dictionary` KeyPackage extension), derived like the others. Unlike them it
    /// is reusable: every Welcome to it is joined, by this client and by every sibling given
    /// it (a sibling re-derives it once and keeps its keys), until it is retired
    /// ([`EmulatorClient::retire_key_packages`]). It pins its emulation epoch until then.
    pub fn publish_last_resort_key_package(
        &mut self,
        services: &Services<'_>,
        cipher_suite: CipherSuite,
        lifetime: Lifetime,
    ) -> Result<KeyPackage, EmulatorError> {
        let mut marker = AppDataDictionary::default();
        marker.insert(LAST_RESORT_KEY_PACKAGE, Vec::new());
        let params = KeyPackageParams::new(cipher_suite, self.credential.clone(), lifetime)
            .extension(marker.to_extension()?);
        self.publish_derived_key_package(services, cipher_suite, params)
    }

    /// A KeyPackage of `params` (the virtual client's leaf parameters added) from derived
    /// secrets, kept with its keys.
    fn publish_derived_key_package(
        &mut self,
        services: &Services<'_>,
        cipher_suite: CipherSuite,
        params: KeyPackageParams,
    ) -> Result<KeyPackage, EmulatorError> {
        let emu = self.emulation_suite(services)?;
        let higher = services.crypto.suite(cipher_suite)?;
        let (epoch, sent) = self.derive_new(emu)?;
        let secrets = sent.leaf_secrets(emu, higher)?;
        let bundle =
            secrets.key_package(higher, params.with_leaf(self.leaf_params(cipher_suite)))?;
        let key_package = bundle.key_package.clone();
        self.key_packages.push(OwnKeyPackage {
            bundle,
            signature_key: secrets.signature_key.clone(),
            leaf: LeafState::derived(&sent.key_secrets, &epoch),
        });
        self.install_newest(epoch);
        Ok(key_package)
    }

    /// `count` KeyPackages of the virtual client for higher-level groups of `cipher_suite`
    /// (§5.5.1), derived from the newest emulation epoch, and the emulation-group Commit
    /// (`options`, e.g. empty) carrying the `KeyPackageUpload` action as the SafeAAD item of
    /// component [`VC_COMPONENT_ID`]. Send the Commit first; once it was accepted
    /// ([`EmulatorClient::confirm_emulation_commit`]) publish the KeyPackages: every sibling
    /// that processed the Commit can join from a Welcome sent to any of them
    /// ([`EmulatorClient::join_from_welcome_by_ref`]). If the Commit is refused, call
    /// [`EmulatorClient::abandon_emulation_commit`] and do not publish them.
    pub fn publish_key_packages(
        &mut self,
        services: &Services<'_>,
        cipher_suite: CipherSuite,
        lifetime: Lifetime,
        count: usize,
        options: CommitOptions,
        now: u64,
    ) -> Result<(CommitOutput, Vec<KeyPackage>), EmulatorError> {
        self.check_member()?;
        if count == 0 {
            return Err(EmulatorError::MalformedUpload("no KeyPackage"));
        }
        let emu = self.emulation_suite(services)?;
        let higher = services.crypto.suite(cipher_suite)?;
        let mut epoch = self
            .epochs
            .last()
            .cloned()
            .ok_or(EmulatorError::UnknownEpochId)?;
        let own_index = self.emulation.own_leaf_index().0;
        let mut made = Vec::with_capacity(count);
        let mut infos = Vec::with_capacity(count);
        for _ in 0..count {
            let sent = derive_for_sender(&mut epoch, emu, own_index)?;
            let secrets = sent.leaf_secrets(emu, higher)?;
            let bundle = secrets.key_package(
                higher,
                KeyPackageParams::new(cipher_suite, self.credential.clone(), lifetime)
                    .with_leaf(self.leaf_params(cipher_suite)),
            )?;
            infos.push(KeyPackageInfo {
                key_package_ref: bundle.reference.clone(),
                random: sent.epoch_info.random.clone(),
            });
            made.push(OwnKeyPackage {
                bundle,
                signature_key: secrets.signature_key.clone(),
                leaf: LeafState::derived(&sent.key_secrets, &epoch),
            });
        }
        let action = VirtualClientAction::KeyPackageUpload(KeyPackageUpload {
            epoch_id: VLBytes::new(epoch.epoch_id().to_vec()),
            key_package_info: infos,
        });
        let out = self
            .emulation
            .commit(services, with_action(options, &action)?, now)?;
        let key_packages = made.iter().map(|k| k.bundle.key_package.clone()).collect();
        self.key_packages.extend(made);
        self.install_newest(epoch);
        Ok((out, key_packages))
    }

    /// The entries a sibling's Commit from `sender` announces with `action` (none unless it
    /// is a `KeyPackageUpload`). Its `epoch_id` must be one we keep; a ref we already know is
    /// refused.
    pub(super) fn uploaded_by(
        &self,
        sender: Sender,
        action: Option<VirtualClientAction>,
    ) -> Result<Vec<UploadedKeyPackage>, EmulatorError> {
        let Some(VirtualClientAction::KeyPackageUpload(upload)) = action else {
            return Ok(Vec::new());
        };
        let Sender::Member(leaf_index) = sender else {
            return Err(EmulatorError::MalformedUpload("not sent by a member"));
        };
        let epoch_id = upload.epoch_id.as_slice().to_vec();
        if !self
            .epochs
            .iter()
            .any(|e| e.epoch_id() == epoch_id.as_slice())
        {
            return Err(EmulatorError::UnknownEpochId);
        }
        if upload.key_package_info.is_empty() {
            return Err(EmulatorError::MalformedUpload("no KeyPackage"));
        }
        let mut out: Vec<UploadedKeyPackage> = Vec::with_capacity(upload.key_package_info.len());
        for info in upload.key_package_info {
            let known = out.iter().any(|u| u.reference == info.key_package_ref)
                || self
                    .uploaded
                    .iter()
                    .any(|u| u.reference == info.key_package_ref);
            if known {
                return Err(EmulatorError::MalformedUpload("KeyPackageRef listed twice"));
            }
            out.push(UploadedKeyPackage {
                reference: info.key_package_ref,
                epoch_id: epoch_id.clone(),
                leaf_index,
                random: info.random.as_slice().to_vec(),
            });
        }
        Ok(out)
    }

    /// Joins a higher-level group from `welcome` sent to a KeyPackage of the virtual client
    /// this client knows by its `KeyPackageRef` alone: one it published, or one a sibling
    /// announced in a `KeyPackageUpload` (§5.5.1) whose keys are re-derived from (`epoch_id`,
    /// sender leaf index, `random`); its PPRF leaf is then punctured. A Welcome for no known
    /// ref is [`EmulatorError::UnknownKeyPackageRef`]. Returns the group ID. On error nothing
    /// changes.
    pub fn join_from_welcome_by_ref(
        &mut self,
        services: &Services<'_>,
        welcome: &Welcome,
        now: u64,
    ) -> Result<Vec<u8>, EmulatorError> {
        self.check_member()?;
        if let Some(own) = self
            .key_packages
            .iter()
            .find(|k| welcome.secrets_for(&k.bundle.reference).is_some())
        {
            let key_package = own.bundle.key_package.clone();
            return self.join_from_welcome(services, welcome, &key_package, now);
        }
        let pos = self
            .uploaded
            .iter()
            .position(|u| welcome.secrets_for(&u.reference).is_some())
            .ok_or(EmulatorError::UnknownKeyPackageRef)?;
        let entry = self
            .uploaded
            .get(pos)
            .cloned()
            .ok_or(EmulatorError::UnknownKeyPackageRef)?;
        let emu = self.emulation_suite(services)?;
        let higher = services.crypto.suite(welcome.cipher_suite)?;
        let index = find_epoch(&self.epochs, &entry.epoch_id)?;
        let epoch = self
            .epochs
            .get(index)
            .cloned()
            .ok_or(EmulatorError::UnknownEpochId)?;
        let received = derive_from_parts(&epoch, emu, entry.leaf_index, &entry.random)?;
        let keys = received.key_secrets.key_pairs(emu, higher)?;
        let group = Group::join_from_welcome_by_ref(
            services,
            self.config,
            welcome,
            &entry.reference,
            &keys.init_key.private_key,
            keys.encryption_key.clone(),
            keys.signature_key.clone(),
            None,
            now,
        )?;
        let group_id = self.install_derived_join(emu, group, received, epoch, index)?;
        self.uploaded.remove(pos);
        self.prune_epochs();
        Ok(group_id)
    }

    /// Joins a higher-level group from `welcome`, sent to `key_package` of the virtual client:
    /// one this client published, or a sibling's (its keys are re-derived from the leaf's
    /// `DerivationInfoExtension` and its PPRF leaf punctured). Returns the group ID.
    pub fn join_from_welcome(
        &mut self,
        services: &Services<'_>,
        welcome: &Welcome,
        key_package: &KeyPackage,
        now: u64,
    ) -> Result<Vec<u8>, EmulatorError> {
        self.check_member()?;
        let higher = services.crypto.suite(key_package.cipher_suite)?;
        let reference = key_package_ref(higher, key_package)?;
        if let Some(pos) = self
            .key_packages
            .iter()
            .position(|k| k.bundle.reference == reference)
        {
            let own = self
                .key_packages
                .get(pos)
                .ok_or(EmulatorError::UnknownGroup)?;
            let group = Group::join_from_welcome(
                services,
                self.config,
                welcome,
                &own.bundle,
                own.signature_key.clone(),
                None,
                now,
            )?;
            let leaf = own.leaf.clone();
            let group_id = self.insert_group(group, leaf)?;
            if !is_last_resort(key_package) {
                self.key_packages.remove(pos);
            }
            self.prune_epochs();
            return Ok(group_id);
        }
        let emu = self.emulation_suite(services)?;
        let ext = derivation_info_of(&key_package.leaf_node)?
            .ok_or(EmulatorError::MissingDerivationInfo)?;
        let index = find_epoch(&self.epochs, ext.epoch_id.as_slice())?;
        let epoch = self
            .epochs
            .get(index)
            .cloned()
            .ok_or(EmulatorError::UnknownEpochId)?;
        let received = derive_for_receiver(&epoch, emu, &ext)?;
        let keys = received.key_secrets.key_pairs(emu, higher)?;
        let bundle = keys.key_package_bundle(higher, key_package.clone())?;
        let group = Group::join_from_welcome(
            services,
            self.config,
            welcome,
            &bundle,
            keys.signature_key.clone(),
            None,
            now,
        )?;
        let last_resort = is_last_resort(key_package).then(|| OwnKeyPackage {
            bundle,
            signature_key: keys.signature_key.clone(),
            leaf: LeafState::derived(&received.key_secrets, &epoch),
        });
        let group_id = self.install_derived_join(emu, group, received, epoch, index)?;
        // A sibling's last-resort KeyPackage: its PPRF leaf is punctured now, so its keys are
        // kept for the next Welcome to it.
        self.key_packages.extend(last_resort);
        Ok(group_id)
    }

    /// Stores a higher-level group joined with keys re-derived from emulation epoch `index`:
    /// punctures their PPRF leaf in `epoch` (a copy of that epoch) and installs both.
    pub(super) fn install_derived_join(
        &mut self,
        emu: &dyn SuiteProvider,
        group: Group,
        received: ReceivedDerivation,
        mut epoch: EmulationEpochSecrets,
        index: usize,
    ) -> Result<Vec<u8>, EmulatorError> {
        received.puncture(&mut epoch, emu)?;
        let leaf = LeafState::derived(&received.key_secrets, &epoch);
        let group_id = self.insert_group(group, leaf)?;
        if let Some(slot) = self.epochs.get_mut(index) {
            *slot = epoch;
        }
        Ok(group_id)
    }

    /// The `KeyPackageRef`s of every unused KeyPackage of the virtual client this client
    /// knows: its own and those siblings announced (`KeyPackageUpload`). A device that was
    /// removed knew all of them (they travel in the state transfer).
    pub fn known_key_packages(&self) -> Vec<KeyPackageRef> {
        self.key_packages
            .iter()
            .map(|k| k.bundle.reference.clone())
            .chain(self.uploaded.iter().map(|u| u.reference.clone()))
            .collect()
    }

    /// After a device was removed from the emulation group: deletes every unused KeyPackage
    /// this client knows (own keys and siblings' announcements), so that a Welcome to one of
    /// them is refused ([`EmulatorError::UnknownKeyPackageRef`]): the removed device holds
    /// their keys. Returns their refs, to delete at the delivery service's KeyPackage
    /// directory; publish new ones. The emulation epochs only they pinned are released.
    pub fn retire_key_packages(&mut self) -> Vec<KeyPackageRef> {
        let retired = self.known_key_packages();
        self.key_packages.clear();
        self.uploaded.clear();
        self.prune_epochs();
        retired
    }
}
