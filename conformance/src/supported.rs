//! Which model operations a backend's declared features allow.
//!
//! Properties that generate operations leave out exactly the ones an
//! undeclared feature would refuse, and check everything else: a store
//! without conditional deletes is still checked on its unconditional ones.

use state_api::{DeleteCondition, Features};

use crate::model::Op;

/// Whether `features` cover `op`: every operation of the contract is
/// mandatory except scans, versioned deletes, increments and puts of
/// values that are not UTF-8.
pub fn supports(features: &Features, op: &Op) -> bool {
    match op {
        Op::Get { .. } => true,
        Op::Put { value, .. } => features.binary_values || std::str::from_utf8(value).is_ok(),
        Op::Delete { condition: DeleteCondition::Always, .. } => true,
        Op::Delete { condition: DeleteCondition::IfVersion(_), .. } => features.conditional_delete,
        Op::Increment { .. } => features.counters,
        Op::Scan { .. } => features.scan,
        Op::Acquire { .. } | Op::Release { .. } => features.locks,
        Op::Fenced { op, .. } => features.fenced_writes && supports(features, op),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use state_api::{Condition, Version};

    use super::*;
    use crate::model::KeyName;

    #[test]
    fn only_the_operations_of_undeclared_features_are_left_out() {
        let key = KeyName::new("s", "k");
        let put = |value: &'static [u8]| Op::Put {
            key: key.clone(),
            value: Bytes::from_static(value),
            condition: Condition::Always,
            ttl_ms: None,
        };
        let versioned = Op::Delete { key: key.clone(), condition: DeleteCondition::IfVersion(Version(1)) };
        let plain = Op::Delete { key: key.clone(), condition: DeleteCondition::Always };
        let increment = Op::Increment { key: key.clone(), delta: 1, ttl_ms: None };
        let scan = Op::Scan { space: "s".into(), prefix: String::new(), limit: 1 };
        for op in [&put(b"text"), &put(&[0xff]), &versioned, &plain, &increment, &scan] {
            assert!(supports(&Features::ALL, op), "{op:?}");
        }
        let none = Features::NONE;
        assert!(
            supports(&none, &put(b"text")) && supports(&none, &plain) && supports(&none, &Op::Get { key: key.clone() })
        );
        for op in [&put(&[0xff]), &versioned, &increment, &scan] {
            assert!(!supports(&none, op), "{op:?}");
        }
    }
}
