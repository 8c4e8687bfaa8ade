//! The Commit (RFC 9420 §12.4).

use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

use super::{Proposal, ProposalOrRef, UpdatePath};

/// `Commit` (§12.4): the proposals it applies and, when needed, the committer's UpdatePath.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Commit {
    /// The proposals covered, by value or by reference, in the order they apply.
    pub proposals: Vec<ProposalOrRef>,
    /// `optional<UpdatePath> path`.
    pub path: Option<UpdatePath>,
}

impl Commit {
    /// The proposals carried by value, in order.
    pub fn proposals_by_value(&self) -> impl Iterator<Item = &Proposal> {
        self.proposals.iter().filter_map(|p| match p {
            ProposalOrRef::Proposal(proposal) => Some(proposal),
            ProposalOrRef::Reference(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_exact, encode};

    #[test]
    fn empty_commit_layout() {
        let commit = Commit::default();
        let bytes = encode(&commit).unwrap();
        assert_eq!(bytes, vec![0, 0]);
        assert_eq!(decode_exact::<Commit>(&bytes).unwrap(), commit);
        // The presence octet of `path` must be 0 or 1 (§2.1.1).
        assert!(decode_exact::<Commit>(&[0, 2]).is_err());
    }

    #[test]
    fn by_value_filter() {
        let commit = Commit {
            proposals: vec![
                ProposalOrRef::Proposal(Proposal::remove(2)),
                ProposalOrRef::Reference(vec![1; 32].into()),
            ],
            path: None,
        };
        assert_eq!(
            commit.proposals_by_value().collect::<Vec<_>>(),
            vec![&Proposal::remove(2)]
        );
        let bytes = encode(&commit).unwrap();
        assert_eq!(decode_exact::<Commit>(&bytes).unwrap(), commit);
    }
}
