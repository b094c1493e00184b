//! The exit codes every command shares, so scripts can tell an error from a "no".

/// Done; the answer is yes (routed, in sync, valid).
pub const OK: i32 = 0;

/// Something could not be done: the map does not load or lacks what the command needs
/// (`[media]`, the named node), a file cannot be read or written, iptables failed.
pub const ERROR: i32 = 1;

/// The command ran and the answer is no: `route` found no partition for the login,
/// `iptables check` found the live rules differ from the map.
pub const NO: i32 = 2;
