//! The object store (DESIGN §7): product images and builds. A local directory by default; the
//! `object_store` crate puts S3-compatible storage behind the same trait.
//!
//! A product image is stored with its size in its name (`products/{product}/{id}-{w}x{h}.webp`)
//! beside smaller copies of it, one per width of [`VARIANT_WIDTHS`] below its own
//! (`…-{w}x{h}-{width}w.webp`), so the gateway serves a `srcset` straight from the store and no
//! table has to list them. An image that cannot be decoded is kept as sent, without copies.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

/// A store rooted at `dir` (created if missing).
pub fn local(dir: &Path) -> anyhow::Result<Arc<dyn ObjectStore>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the object store directory {}", dir.display()))?;
    let store = LocalFileSystem::new_with_prefix(dir)
        .with_context(|| format!("opening the object store at {}", dir.display()))?;
    Ok(Arc::new(store))
}

/// Image formats accepted for product media, recognised by their first bytes (never by the
/// name or the client's content type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Jpeg,
    Webp,
}

impl ImageFormat {
    pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
        match bytes {
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(ImageFormat::Png),
            [0xFF, 0xD8, 0xFF, ..] => Some(ImageFormat::Jpeg),
            [
                b'R',
                b'I',
                b'F',
                b'F',
                _,
                _,
                _,
                _,
                b'W',
                b'E',
                b'B',
                b'P',
                ..,
            ] => Some(ImageFormat::Webp),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Webp => "webp",
        }
    }
}

/// Widths of the smaller copies of a product image (those below the image's own width).
pub const VARIANT_WIDTHS: [u32; 3] = [320, 640, 960];

/// Largest width or height of an image the api decodes (to make its copies).
const MAX_DECODED_SIDE: u32 = 8192;
/// Most memory one decode may take.
const MAX_DECODE_ALLOC: u64 = 256 << 20;

/// An image ready to store: its size and its smaller copies, encoded like the original.
#[derive(Debug)]
pub struct PreparedImage {
    pub format: ImageFormat,
    /// `None`: the bytes could not be decoded; the image is stored as sent, without copies.
    pub size: Option<(u32, u32)>,
    /// `(width, bytes)` of each smaller copy.
    pub variants: Vec<(u32, Vec<u8>)>,
}

/// Decodes `bytes` (of a sniffed `format`) and makes its smaller copies. CPU-bound: call it on
/// the blocking pool.
pub fn prepare_image(bytes: &[u8], format: ImageFormat) -> PreparedImage {
    let decoded = decode(bytes, format);
    let Some(img) = decoded else {
        return PreparedImage {
            format,
            size: None,
            variants: Vec::new(),
        };
    };
    let (w, h) = (img.width(), img.height());
    let variants = VARIANT_WIDTHS
        .iter()
        .filter(|&&vw| vw < w)
        .filter_map(|&vw| {
            let vh = (u64::from(h) * u64::from(vw) / u64::from(w)).max(1);
            // Area averaging: as good as a filter for shrinking, and several times faster.
            let small = img.thumbnail_exact(vw, u32::try_from(vh).unwrap_or(1));
            encode(&small, format).map(|b| (vw, b))
        })
        .collect();
    PreparedImage {
        format,
        size: Some((w, h)),
        variants,
    }
}

fn decode(bytes: &[u8], format: ImageFormat) -> Option<image::DynamicImage> {
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format.into());
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DECODED_SIDE);
    limits.max_image_height = Some(MAX_DECODED_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    reader.decode().ok()
}

/// Encodes `img` as `format`: PNG and WebP (lossless) as they are, JPEG at quality 85.
pub fn encode(img: &image::DynamicImage, format: ImageFormat) -> Option<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    let done =
        match format {
            ImageFormat::Jpeg => img.to_rgb8().write_with_encoder(
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85),
            ),
            ImageFormat::Png => {
                img.write_with_encoder(image::codecs::png::PngEncoder::new_with_quality(
                    &mut out,
                    image::codecs::png::CompressionType::Default,
                    image::codecs::png::FilterType::Adaptive,
                ))
            }
            ImageFormat::Webp => img
                .to_rgba8()
                .write_with_encoder(image::codecs::webp::WebPEncoder::new_lossless(&mut out)),
        };
    done.ok().map(|()| out.into_inner())
}

impl From<ImageFormat> for image::ImageFormat {
    fn from(f: ImageFormat) -> image::ImageFormat {
        match f {
            ImageFormat::Png => image::ImageFormat::Png,
            ImageFormat::Jpeg => image::ImageFormat::Jpeg,
            ImageFormat::Webp => image::ImageFormat::WebP,
        }
    }
}

/// The key of a new product image: its size in the name when known.
pub fn image_key(product_id: uuid::Uuid, id: uuid::Uuid, image: &PreparedImage) -> String {
    let ext = image.format.extension();
    match image.size {
        Some((w, h)) => format!("products/{product_id}/{id}-{w}x{h}.{ext}"),
        None => format!("products/{product_id}/{id}.{ext}"),
    }
}

/// The size an image key names (`None` for images stored without copies).
pub fn image_size(key: &str) -> Option<(u32, u32)> {
    let (stem, _ext) = key.rsplit_once('.')?;
    let (_, size) = stem.rsplit_once('-')?;
    let (w, h) = size.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// The key of the copy of `key` that is `width` wide.
pub fn variant_key(key: &str, width: u32) -> Option<String> {
    let (stem, ext) = key.rsplit_once('.')?;
    Some(format!("{stem}-{width}w.{ext}"))
}

/// `(width, key)` of every copy of `key`, the original last.
pub fn image_variants(key: &str) -> Vec<(u32, String)> {
    let Some((w, _)) = image_size(key) else {
        return Vec::new();
    };
    VARIANT_WIDTHS
        .iter()
        .filter(|&&vw| vw < w)
        .filter_map(|&vw| variant_key(key, vw).map(|k| (vw, k)))
        .chain(std::iter::once((w, key.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_keys_name_their_size_and_copies() {
        let key = "products/0190-aa/0190b2c4-1111-7abc-8def-0123456789ab-1280x720.webp";
        assert_eq!(image_size(key), Some((1280, 720)));
        assert_eq!(
            image_variants(key)
                .iter()
                .map(|(w, _)| *w)
                .collect::<Vec<_>>(),
            vec![320, 640, 960, 1280]
        );
        assert_eq!(
            image_variants(key)[0].1,
            "products/0190-aa/0190b2c4-1111-7abc-8def-0123456789ab-1280x720-320w.webp"
        );
        // Keys of images stored before copies existed, or undecodable ones.
        assert_eq!(
            image_size("products/p/0190b2c4-1111-7abc-8def-0123456789ab.png"),
            None
        );
        assert!(image_variants("products/p/0190b2c4-1111-7abc-8def-0123456789ab.png").is_empty());
    }

    #[test]
    fn an_image_gets_smaller_copies_in_its_format() {
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            700,
            350,
            image::Rgb([10, 120, 200]),
        ));
        let png = encode(&img, ImageFormat::Png).expect("png");
        let prepared = prepare_image(&png, ImageFormat::Png);
        assert_eq!(prepared.size, Some((700, 350)));
        let widths: Vec<u32> = prepared.variants.iter().map(|(w, _)| *w).collect();
        assert_eq!(widths, vec![320, 640]);
        assert!(
            prepared
                .variants
                .iter()
                .all(|(_, b)| ImageFormat::sniff(b) == Some(ImageFormat::Png))
        );
        let junk = prepare_image(b"\x89PNG\r\n\x1a\n....", ImageFormat::Png);
        assert_eq!(junk.size, None);
        assert!(junk.variants.is_empty());
    }

    #[test]
    fn images_are_recognised_by_their_bytes() {
        assert_eq!(
            ImageFormat::sniff(b"\x89PNG\r\n\x1a\n...."),
            Some(ImageFormat::Png)
        );
        assert_eq!(
            ImageFormat::sniff(b"\xff\xd8\xff\xe0"),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            ImageFormat::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(ImageFormat::Webp)
        );
        assert_eq!(ImageFormat::sniff(b"<svg xmlns="), None);
        assert_eq!(ImageFormat::sniff(b"GIF89a"), None);
    }
}
