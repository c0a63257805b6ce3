//! The container's file system as a plan of mount operations. (Stub: being written.)
