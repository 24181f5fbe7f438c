//! The tar archive of a chunked build, for people without `store-cli` (the SPA's Download
//! button): POSIX ustar, a PAX record for a path that is not ASCII or longer than 100 bytes
//! (or a file of 8 GiB and more), every file in manifest order with its mode, owner 0, and the
//! build's creation time. The layout depends on the manifest and that time only, so the size
//! and SHA-256 are computed once, when the build is made, and the archive is assembled from
//! the chunks again for every download (nothing but the chunks is stored).

use domain::catalog::manifest::ManifestFile;

const BLOCK: usize = 512;
/// The largest size the ustar size field holds (11 octal digits).
const USTAR_MAX_SIZE: u64 = 0o77_777_777_777;

/// Zero bytes after a file's data, up to the next block.
pub fn padding(size: u64) -> usize {
    let rest = (size % BLOCK as u64) as usize;
    if rest == 0 { 0 } else { BLOCK - rest }
}

/// The end of an archive: two zero blocks.
pub const TRAILER: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

fn octal(field: &mut [u8], value: u64) {
    // `width - 1` octal digits, zero-padded, then NUL.
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    let bytes = text.as_bytes();
    let start = bytes.len().saturating_sub(digits);
    field[..digits].copy_from_slice(&bytes[start..]);
    field[digits] = 0;
}

fn ustar_block(name: &[u8], size: u64, mode: u32, mtime: i64, kind: u8) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size.min(USTAR_MAX_SIZE));
    octal(&mut h[136..148], u64::try_from(mtime).unwrap_or(0));
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    h
}

/// One PAX record, `"<len> <key>=<value>\n"`, where `<len>` counts the whole record.
fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    format!("{len}{body}")
}

/// The header blocks of `file`: one ustar block, preceded by a PAX header when its path or
/// size does not fit.
pub fn header(file: &ManifestFile, mtime: i64) -> Vec<u8> {
    let path = file.path.as_bytes();
    let fits = file.path.is_ascii() && path.len() <= 100 && file.size <= USTAR_MAX_SIZE;
    let mut out = Vec::with_capacity(BLOCK);
    if !fits {
        let mut records = String::new();
        if !(file.path.is_ascii() && path.len() <= 100) {
            records.push_str(&pax_record("path", &file.path));
        }
        if file.size > USTAR_MAX_SIZE {
            records.push_str(&pax_record("size", &file.size.to_string()));
        }
        let records = records.into_bytes();
        out.extend_from_slice(&ustar_block(
            b"././@PaxHeader",
            records.len() as u64,
            0o644,
            mtime,
            b'x',
        ));
        out.extend_from_slice(&records);
        out.resize(out.len() + padding(records.len() as u64), 0);
    }
    // The ASCII part of the path as the plain name (readers without PAX get something).
    let fallback: Vec<u8> = file
        .path
        .bytes()
        .map(|b| if b.is_ascii() { b } else { b'_' })
        .collect();
    out.extend_from_slice(&ustar_block(&fallback, file.size, file.mode, mtime, b'0'));
    out
}

/// The size of the archive of `files`.
pub fn size(files: &[ManifestFile], mtime: i64) -> u64 {
    files
        .iter()
        .map(|f| header(f, mtime).len() as u64 + f.size + padding(f.size) as u64)
        .sum::<u64>()
        + TRAILER.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, size: u64, mode: u32) -> ManifestFile {
        ManifestFile {
            path: path.to_owned(),
            size,
            mode,
            sha256: "0".repeat(64),
            chunks: Vec::new(),
        }
    }

    #[test]
    fn headers_are_ustar_with_pax_for_long_or_non_ascii_paths() {
        let short = header(&file("bin/game", 1000, 0o755), 1_700_000_000);
        assert_eq!(short.len(), 512);
        assert_eq!(&short[..8], b"bin/game");
        assert_eq!(&short[100..108], b"0000755\0");
        assert_eq!(&short[124..136], b"00000001750\0");
        assert_eq!(&short[257..263], b"ustar\0");
        let sum: u64 = short
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        assert_eq!(&short[148..156], format!("{sum:06o}\0 ").as_bytes());

        let long_path = format!("{}/file.bin", "d".repeat(120));
        let long = header(&file(&long_path, 3, 0o644), 0);
        assert_eq!(long.len(), 3 * 512);
        assert_eq!(long[156], b'x');
        let record = pax_record("path", &long_path);
        assert_eq!(&long[512..512 + record.len()], record.as_bytes());
        assert!(record.starts_with(&format!("{} path=", record.len())));
        assert_eq!(pax_record("a", "b"), "6 a=b\n");
        assert_eq!(header(&file("ünï", 0, 0o644), 0).len(), 3 * 512);
    }

    #[test]
    fn the_size_counts_headers_data_padding_and_trailer() {
        let files = [
            file("a", 1, 0o644),
            file("b", 512, 0o644),
            file("c", 0, 0o644),
        ];
        assert_eq!(size(&files, 0), 512 + 512 + 512 + 512 + 512 + 1024);
    }
}
