//! Manifests and indexes as registries and archives send them: parsing must not panic, nor
//! must choosing a platform or reading the layers' media types. The first byte picks the
//! Content-Type the registry claimed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nook::image::manifest::{self, Manifest, PlatformSpec};

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some(manifest::MEDIA_OCI_MANIFEST),
    Some(manifest::MEDIA_OCI_INDEX),
    Some(manifest::MEDIA_DOCKER_MANIFEST),
    Some(manifest::MEDIA_DOCKER_LIST),
    Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
    Some("application/json; charset=utf-8"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    match manifest::parse(body, content_type) {
        Ok(Manifest::Image(image)) => {
            let _ = image.config().digest().to_string();
            for layer in image.layers() {
                let _ = manifest::layer_compression(layer.media_type().as_ref());
                let _ = layer
                    .digest()
                    .to_string()
                    .parse::<nook::image::digest::Digest>();
            }
        }
        Ok(Manifest::Index(index)) => {
            for platform in [
                "linux/amd64",
                "linux/arm64/v8",
                "linux/arm/v7",
                "windows/amd64",
            ] {
                let _ = manifest::select_platform(&index, &PlatformSpec::parse(platform).unwrap());
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = PlatformSpec::parse(text);
    }
});
