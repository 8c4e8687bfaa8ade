//! The proposals a member received in the current epoch, by reference (RFC 9420 §12.4: "Commits
//! for previously sent proposals from anyone (including the committer) can be sent by
//! reference"), and the resolution of a Commit's `ProposalOrRef` list.
//!
//! The store keeps the order in which proposals arrived: the committer's preference rules of
//! §12.2 ("the most recent Update") and the order of the Commit it builds depend on it. The
//! group clears the store whenever the epoch changes (§12.4: proposals are only valid within
//! the epoch in which they were sent).

use std::collections::HashMap;

use tls_codec::{DeserializeBytes, Serialize, Size};

use crate::codec::{Proposal, ProposalOrRef, ProposalRef, Sender};

/// A proposal received in the current epoch.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    tls_codec::TlsSerialize,
    tls_codec::TlsDeserialize,
    tls_codec::TlsDeserializeBytes,
    tls_codec::TlsSize,
)]
pub struct StoredProposal {
    /// `MakeProposalRef` of the AuthenticatedContent that carried it (§5.2).
    pub reference: ProposalRef,
    /// Who sent it.
    pub sender: Sender,
    /// The proposal.
    pub proposal: Proposal,
}

/// A proposal covered by a Commit, with its sender: the committer for proposals by value,
/// the original sender for proposals by reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedProposal {
    /// The proposal's sender.
    pub sender: Sender,
    /// The proposal.
    pub proposal: Proposal,
    /// Its reference if the Commit names it by reference; `None` if by value.
    pub reference: Option<ProposalRef>,
}

impl ResolvedProposal {
    /// A proposal the committer includes by value.
    pub fn by_value(committer: Sender, proposal: Proposal) -> Self {
        Self {
            sender: committer,
            proposal,
            reference: None,
        }
    }

    /// The `ProposalOrRef` that names this proposal in a Commit.
    pub fn to_proposal_or_ref(&self) -> ProposalOrRef {
        match &self.reference {
            Some(reference) => ProposalOrRef::Reference(reference.clone()),
            None => ProposalOrRef::Proposal(self.proposal.clone()),
        }
    }
}

impl From<&StoredProposal> for ResolvedProposal {
    fn from(stored: &StoredProposal) -> Self {
        Self {
            sender: stored.sender,
            proposal: stored.proposal.clone(),
            reference: Some(stored.reference.clone()),
        }
    }
}

/// A proposal of a Commit's list together with its sender, however the caller holds it:
/// `(Sender, Proposal)` pairs, [`ResolvedProposal`]s or [`StoredProposal`]s.
pub trait CommittedProposal {
    /// The proposal's sender (the committer for proposals by value).
    fn sender(&self) -> Sender;
    /// The proposal.
    fn proposal(&self) -> &Proposal;
    /// Whether the Commit names it by reference (rather than by value).
    fn is_by_reference(&self) -> bool;
}

/// A pair is a proposal by value.
impl CommittedProposal for (Sender, Proposal) {
    fn sender(&self) -> Sender {
        self.0
    }
    fn proposal(&self) -> &Proposal {
        &self.1
    }
    fn is_by_reference(&self) -> bool {
        false
    }
}

impl CommittedProposal for ResolvedProposal {
    fn sender(&self) -> Sender {
        self.sender
    }
    fn proposal(&self) -> &Proposal {
        &self.proposal
    }
    fn is_by_reference(&self) -> bool {
        self.reference.is_some()
    }
}

/// A stored proposal is committed by reference.
impl CommittedProposal for StoredProposal {
    fn sender(&self) -> Sender {
        self.sender
    }
    fn proposal(&self) -> &Proposal {
        &self.proposal
    }
    fn is_by_reference(&self) -> bool {
        true
    }
}

/// Why a proposal could not be stored or a Commit's list could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalStoreError {
    /// §12.4.2: a Commit names by reference a proposal this member has not received in the
    /// current epoch.
    #[error("the Commit references an unknown proposal (entry {index})")]
    UnknownProposalRef {
        /// The position of the entry in the Commit's `proposals`.
        index: usize,
        /// The unknown reference.
        reference: ProposalRef,
    },
    /// §6: a `new_member_commit` sender sends Commits, not proposals; it cannot be stored.
    #[error("a new_member_commit sender cannot send a stand-alone proposal")]
    NewMemberCommitProposal,
    /// §12.1.8: a `new_member_proposal` sender may only propose its own Add.
    #[error("a new_member_proposal sender may only send an Add")]
    NewMemberProposalNotAdd,
    /// §12.1.8: an `external` sender sent a proposal type external senders may not send.
    #[error("an external sender may not send this proposal type")]
    NotAllowedForExternalSender,
    /// The store's encoding is malformed.
    #[error("malformed proposal store encoding")]
    Malformed,
}

/// The proposals received in the current epoch, in arrival order, indexed by reference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProposalStore {
    proposals: Vec<StoredProposal>,
    index: HashMap<ProposalRef, usize>,
}

impl ProposalStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a proposal received (or sent) in the current epoch under `reference`. The sender
    /// must be one that may send a stand-alone proposal of this type (§12.1.8). A proposal
    /// already stored under the same reference is kept (the reference is a hash of the
    /// content); returns whether the proposal was new.
    pub fn insert(
        &mut self,
        reference: ProposalRef,
        sender: Sender,
        proposal: Proposal,
    ) -> Result<bool, ProposalStoreError> {
        match sender {
            Sender::NewMemberCommit => return Err(ProposalStoreError::NewMemberCommitProposal),
            Sender::NewMemberProposal if !matches!(proposal, Proposal::Add(_)) => {
                return Err(ProposalStoreError::NewMemberProposalNotAdd)
            }
            Sender::External(_) if !proposal.is_allowed_for_external_sender() => {
                return Err(ProposalStoreError::NotAllowedForExternalSender)
            }
            _ => {}
        }
        if self.index.contains_key(&reference) {
            return Ok(false);
        }
        self.index.insert(reference.clone(), self.proposals.len());
        self.proposals.push(StoredProposal {
            reference,
            sender,
            proposal,
        });
        Ok(true)
    }

    /// The proposal stored under `reference`.
    pub fn get(&self, reference: &ProposalRef) -> Option<&StoredProposal> {
        self.index
            .get(reference)
            .and_then(|&i| self.proposals.get(i))
    }

    /// Whether a proposal is stored under `reference`.
    pub fn contains(&self, reference: &ProposalRef) -> bool {
        self.index.contains_key(reference)
    }

    /// The stored proposals in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = &StoredProposal> + '_ {
        self.proposals.iter()
    }

    /// The stored proposals as [`ResolvedProposal`]s (by reference), in arrival order: the
    /// candidates a committer passes to [`super::filter_proposals`].
    pub fn candidates(&self) -> Vec<ResolvedProposal> {
        self.proposals.iter().map(ResolvedProposal::from).collect()
    }

    /// The number of stored proposals.
    pub fn len(&self) -> usize {
        self.proposals.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.proposals.is_empty()
    }

    /// Forgets every proposal (on every epoch change).
    pub fn clear(&mut self) {
        self.proposals.clear();
        self.index.clear();
    }

    /// Resolves a Commit's `proposals` vector (§12.4.2): proposals by value get `committer` as
    /// sender, references are looked up in the store. An unknown reference is an error.
    pub fn resolve(
        &self,
        committer: Sender,
        proposals: &[ProposalOrRef],
    ) -> Result<Vec<ResolvedProposal>, ProposalStoreError> {
        proposals
            .iter()
            .enumerate()
            .map(|(index, entry)| match entry {
                ProposalOrRef::Proposal(proposal) => {
                    Ok(ResolvedProposal::by_value(committer, proposal.clone()))
                }
                ProposalOrRef::Reference(reference) => self
                    .get(reference)
                    .map(ResolvedProposal::from)
                    .ok_or_else(|| ProposalStoreError::UnknownProposalRef {
                        index,
                        reference: reference.clone(),
                    }),
            })
            .collect()
    }

    /// Encodes the store (part of the serialised group state, design hook H8): the stored
    /// proposals as `StoredProposal proposals<V>`.
    pub fn to_bytes(&self) -> Result<Vec<u8>, tls_codec::Error> {
        self.proposals.tls_serialize_detached()
    }

    /// Decodes a store encoded by [`Self::to_bytes`]; a repeated reference is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProposalStoreError> {
        let (proposals, rest) = Vec::<StoredProposal>::tls_deserialize_bytes(bytes)
            .map_err(|_| ProposalStoreError::Malformed)?;
        if !rest.is_empty() {
            return Err(ProposalStoreError::Malformed);
        }
        let mut index = HashMap::with_capacity(proposals.len());
        for (i, stored) in proposals.iter().enumerate() {
            if index.insert(stored.reference.clone(), i).is_some() {
                return Err(ProposalStoreError::Malformed);
            }
        }
        Ok(Self { proposals, index })
    }

    /// The length of [`Self::to_bytes`].
    pub fn encoded_len(&self) -> usize {
        self.proposals.tls_serialized_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(tag: u8) -> ProposalRef {
        ProposalRef::from(vec![tag; 32])
    }

    #[test]
    fn insert_get_resolve_clear() {
        let mut store = ProposalStore::new();
        assert!(store
            .insert(r(1), Sender::Member(1), Proposal::remove(2))
            .unwrap());
        assert!(!store
            .insert(r(1), Sender::Member(1), Proposal::remove(2))
            .unwrap());
        assert_eq!(store.len(), 1);
        assert_eq!(store.get(&r(1)).unwrap().proposal, Proposal::remove(2));

        let list = vec![
            ProposalOrRef::Reference(r(1)),
            ProposalOrRef::Proposal(Proposal::remove(3)),
        ];
        let resolved = store.resolve(Sender::Member(0), &list).unwrap();
        assert_eq!(resolved[0].sender, Sender::Member(1));
        assert_eq!(resolved[0].reference, Some(r(1)));
        assert_eq!(resolved[1].sender, Sender::Member(0));
        assert_eq!(resolved[1].reference, None);
        assert_eq!(resolved[0].to_proposal_or_ref(), list[0]);
        assert_eq!(resolved[1].to_proposal_or_ref(), list[1]);

        let unknown = vec![ProposalOrRef::Reference(r(9))];
        assert_eq!(
            store.resolve(Sender::Member(0), &unknown),
            Err(ProposalStoreError::UnknownProposalRef {
                index: 0,
                reference: r(9)
            })
        );

        store.clear();
        assert!(store.is_empty());
        assert!(!store.contains(&r(1)));
    }

    #[test]
    fn sender_rules() {
        let mut store = ProposalStore::new();
        assert_eq!(
            store.insert(r(1), Sender::NewMemberCommit, Proposal::remove(0)),
            Err(ProposalStoreError::NewMemberCommitProposal)
        );
        assert_eq!(
            store.insert(r(1), Sender::NewMemberProposal, Proposal::remove(0)),
            Err(ProposalStoreError::NewMemberProposalNotAdd)
        );
        let external_init = Proposal::ExternalInit(crate::codec::ExternalInit {
            kem_output: vec![1].into(),
        });
        assert_eq!(
            store.insert(r(1), Sender::External(0), external_init),
            Err(ProposalStoreError::NotAllowedForExternalSender)
        );
        assert!(store
            .insert(r(1), Sender::External(0), Proposal::remove(0))
            .unwrap());
    }

    #[test]
    fn round_trips_in_order() {
        let mut store = ProposalStore::new();
        store
            .insert(r(2), Sender::Member(0), Proposal::remove(1))
            .unwrap();
        store
            .insert(r(1), Sender::External(3), Proposal::remove(2))
            .unwrap();
        let bytes = store.to_bytes().unwrap();
        assert_eq!(bytes.len(), store.encoded_len());
        let back = ProposalStore::from_bytes(&bytes).unwrap();
        assert_eq!(back, store);
        let order: Vec<_> = back.iter().map(|s| s.reference.clone()).collect();
        assert_eq!(order, vec![r(2), r(1)]);
        assert_eq!(back.candidates()[1].sender, Sender::External(3));

        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            ProposalStore::from_bytes(&trailing),
            Err(ProposalStoreError::Malformed)
        );
    }
}
