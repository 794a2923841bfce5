//! Pictures out of requests: a raw `image/jpeg` or `image/png` body, or the `image` field of a
//! `multipart/form-data` form. Every size is checked before memory is spent on it: the body
//! against `--max-body` as it arrives, the pixels the header declares against `--max-pixels`
//! before decoding; decoding itself is convnet's one decoder (truncated JPEGs refused).

use std::io::Cursor;
use std::path::Path;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};
use image::{DynamicImage, ImageReader};

use crate::config::Limits;
use crate::error::{ApiError, one_line};

/// The name a picture goes by in messages when the form does not give its file name.
pub const UNNAMED: &str = "upload";

/// A picture's bytes as they arrived, not yet decoded.
#[derive(Debug, Clone)]
pub struct Upload {
    pub bytes: Bytes,
    /// The form's file name, else [`UNNAMED`]: it names the picture in errors, as a path does
    /// on the command line.
    pub name: String,
}

fn too_large(limits: &Limits) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the body is over the limit of {} bytes (--max-body)",
            limits.max_body
        ),
    )
}

/// The picture in `request`, its size and declared pixels checked.
pub async fn read(request: Request, limits: &Limits) -> Result<Upload, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if !matches!(
        mime.as_str(),
        "image/jpeg" | "image/png" | "multipart/form-data"
    ) {
        let sent = if content_type.is_empty() {
            "no Content-Type".to_string()
        } else {
            format!("'{content_type}'")
        };
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "send the picture as image/jpeg, image/png or multipart/form-data (field 'image'), not {sent}"
            ),
        ));
    }
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return Err(too_large(limits));
    }
    let upload = if mime == "multipart/form-data" {
        from_form(request, limits).await?
    } else {
        let bytes = axum::body::to_bytes(request.into_body(), limits.max_body)
            .await
            .map_err(|_| too_large(limits))?;
        Upload {
            bytes,
            name: UNNAMED.into(),
        }
    };
    check_pixels(&upload, limits)?;
    Ok(upload)
}

/// The `image` field of a form; the other fields are skipped.
async fn from_form(request: Request, limits: &Limits) -> Result<Upload, ApiError> {
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::bad_request(format!("not a multipart form: {}", e.body_text())))?;
    let field_error = |e: axum::extract::multipart::MultipartError| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(limits),
        _ => ApiError::bad_request(format!("cannot read the form: {}", e.body_text())),
    };
    while let Some(field) = form.next_field().await.map_err(field_error)? {
        if field.name() != Some("image") {
            continue;
        }
        let name = field
            .file_name()
            .filter(|n| !n.is_empty())
            .unwrap_or(UNNAMED)
            .to_string();
        let bytes = field.bytes().await.map_err(field_error)?;
        return Ok(Upload { bytes, name });
    }
    Err(ApiError::bad_request(
        "the form has no field named 'image' holding the picture",
    ))
}

/// Refuses a picture whose header declares more than `--max-pixels`, from the header alone.
/// Bytes whose header does not read pass on to the decoder, which names the problem as the
/// command line does.
fn check_pixels(upload: &Upload, limits: &Limits) -> Result<(), ApiError> {
    let Ok(reader) = ImageReader::new(Cursor::new(&upload.bytes[..])).with_guessed_format() else {
        return Ok(());
    };
    let Ok((w, h)) = reader.into_dimensions() else {
        return Ok(());
    };
    let pixels = u64::from(w) * u64::from(h);
    if pixels > limits.max_pixels {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{}: {w} x {h} pixels is over the limit of {} pixels (--max-pixels)",
                upload.name, limits.max_pixels
            ),
        ));
    }
    Ok(())
}

/// The picture decoded by convnet's decoder; a picture it refuses is the client's error.
pub fn decode(upload: &Upload) -> Result<DynamicImage, ApiError> {
    convnet_vision::image_io::decode_bytes(&upload.bytes, Path::new(&upload.name))
        .map_err(|e| ApiError::bad_request(one_line(&e)))
}

/// `picture` as PNG bytes.
pub fn png(picture: &DynamicImage) -> anyhow::Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn request(content_type: &str, body: Vec<u8>) -> Request {
        Request::builder()
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap()
    }

    fn png_bytes(w: u32, h: u32) -> Vec<u8> {
        png(&DynamicImage::new_rgb8(w, h)).unwrap()
    }

    /// A PNG whose header claims `w` x `h` pixels, with no pixel data behind it.
    fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut bytes = png_bytes(1, 1);
        bytes[16..20].copy_from_slice(&w.to_be_bytes());
        bytes[20..24].copy_from_slice(&h.to_be_bytes());
        // The header's checksum, so the reader trusts it.
        let crc = crc32fast::hash(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    #[tokio::test]
    async fn raw_bodies_and_form_fields_are_read_within_the_limits() {
        let limits = Limits::default();
        let up = read(request("image/png", png_bytes(4, 3)), &limits)
            .await
            .unwrap();
        assert_eq!(
            (up.name.as_str(), decode(&up).unwrap().width()),
            (UNNAMED, 4)
        );

        let boundary = "XyZ";
        let mut form = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"cat.png\"\r\nContent-Type: image/png\r\n\r\n"
        )
        .into_bytes();
        form.extend(png_bytes(2, 5));
        form.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
        let ct = format!("multipart/form-data; boundary={boundary}");
        let up = read(request(&ct, form), &limits).await.unwrap();
        assert_eq!(up.name, "cat.png");
        assert_eq!(decode(&up).unwrap().height(), 5);

        let status = |r: Result<Upload, ApiError>| r.unwrap_err().status().as_u16();
        assert_eq!(
            status(read(request("text/plain", vec![1]), &limits).await),
            415
        );
        let small = Limits {
            max_body: 10,
            ..limits
        };
        assert_eq!(
            status(read(request("image/png", png_bytes(4, 4)), &small).await),
            413
        );
        let empty_form = format!("--{boundary}--\r\n").into_bytes();
        assert_eq!(status(read(request(&ct, empty_form), &limits).await), 400);
    }

    #[tokio::test]
    async fn a_header_claiming_too_many_pixels_is_refused_before_decoding() {
        let limits = Limits::default();
        let err = read(request("image/png", png_header(50_000, 50_000)), &limits)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 413);
        assert!(err.message().contains("50000 x 50000"), "{err:?}");
        // Garbage passes the header check; the decoder refuses it with the CLI's message.
        let up = read(request("image/jpeg", b"not a picture".to_vec()), &limits)
            .await
            .unwrap();
        let err = decode(&up).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(
            err.message().starts_with("cannot read image upload"),
            "{err:?}"
        );
    }
}
