//! Group keys: what `#[job(group = field)]` and `JobOptions::group` turn
//! into the key that flow control counts jobs by.

/// A payload field's value as a group key (`#[job(group = field)]`).
///
/// Implemented for strings, integers, `char`, [`ulid::Ulid`] and `Option`
/// of any of them (`None`: the job has no group). Implement it for your own
/// id types; the key should be short (at most 128 bytes) and stable.
///
/// ```
/// use jobs_core::GroupKey;
/// struct AccountId(u64);
/// impl GroupKey for AccountId {
///     fn group_key(&self) -> Option<String> {
///         Some(format!("acct-{}", self.0))
///     }
/// }
/// assert_eq!(AccountId(7).group_key().as_deref(), Some("acct-7"));
/// assert_eq!(Some(3u32).group_key().as_deref(), Some("3"));
/// assert_eq!(None::<u32>.group_key(), None);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a group key: `group = ..` names a parameter whose value says which group a job is in",
    label = "not a group key",
    note = "use a string, an integer, a char or a ulid (or an `Option` of one), or implement `jobs_core::GroupKey` for the type"
)]
pub trait GroupKey {
    /// The key, or `None` when this value puts the job in no group.
    fn group_key(&self) -> Option<String>;
}

macro_rules! group_key_by_display {
    ($($t:ty),* $(,)?) => {$(
        impl GroupKey for $t {
            fn group_key(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )*};
}

group_key_by_display!(String, str, char, u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, ulid::Ulid);

impl<T: GroupKey + ?Sized> GroupKey for &T {
    fn group_key(&self) -> Option<String> {
        (**self).group_key()
    }
}

impl<T: GroupKey> GroupKey for Option<T> {
    fn group_key(&self) -> Option<String> {
        self.as_ref().and_then(GroupKey::group_key)
    }
}
