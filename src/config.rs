//! User configuration under `$XDG_CONFIG_HOME/nook`. (Stub: being written.)
