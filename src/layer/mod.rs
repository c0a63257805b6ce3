//! Layer tar streams: applying them to a directory (with hostile-input guards) and, later,
//! writing a container's changes as a layer. Pure file-tree code, no namespaces or HTTP.

pub mod changes;
pub mod unpack;
