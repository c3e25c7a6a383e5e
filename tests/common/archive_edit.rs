//! Edits a real archive's header the way only a forger could, keeping it complete and
//! consistent: tests use it to make archives look older or of another database.

use std::io::{Read, Write};

use sha2::{Digest, Sha256};

/// Rewrites a real archive with `edit` applied to header.json and manifest.json, keeping
/// it complete (the manifest's record of header.json follows the edit).
pub fn rewrite(
    archive: &[u8],
    edit: impl Fn(&mut serde_json::Map<String, serde_json::Value>),
) -> Vec<u8> {
    let mut entries: Vec<(tar::Header, Vec<u8>)> = Vec::new();
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(archive));
    for e in tar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read entry");
        entries.push((e.header().clone(), data));
    }
    let json_edit = |data: &[u8]| {
        let mut v: serde_json::Value = serde_json::from_slice(data).expect("json");
        edit(v.as_object_mut().expect("object"));
        serde_json::to_vec_pretty(&v).expect("encode")
    };
    let header = json_edit(&entries[0].1);
    let sha = hex::encode(Sha256::digest(&header));
    entries[0].1 = header.clone();
    let last = entries.len() - 1;
    let mut manifest: serde_json::Value = serde_json::from_slice(&entries[last].1).expect("json");
    edit(manifest.as_object_mut().expect("object"));
    for entry in manifest["entries"].as_array_mut().expect("entries") {
        if entry["name"] == "header.json" {
            entry["size"] = header.len().into();
            entry["sha256"] = sha.clone().into();
        }
    }
    entries[last].1 = serde_json::to_vec_pretty(&manifest).expect("encode");
    // Like the writer: every entry its own gzip member, the last one holding the manifest
    // and the tar end marker.
    let mut out = Vec::new();
    for (i, (mut h, data)) in entries.into_iter().enumerate() {
        h.set_size(data.len() as u64);
        h.set_cksum();
        let mut block = h.as_bytes().to_vec();
        block.extend_from_slice(&data);
        block.resize(block.len().div_ceil(512) * 512, 0);
        if i == last {
            block.extend_from_slice(&[0u8; 1024]);
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&block).expect("gzip");
        out.extend(gz.finish().expect("gzip"));
    }
    out
}
