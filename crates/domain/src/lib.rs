//! Domain rules both dialin services must apply alike: the ids they derive,
//! how input is validated, how timestamps are stored, how a payload that holds
//! a PIN is sealed, and the key files behind that.

pub mod backoff;
pub mod ids;
pub mod keyfile;
pub mod sealed;
pub mod time;
pub mod validate;
