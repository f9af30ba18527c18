//! Photos of 核实 and 整改: the tablet uploads each photo like a case page (the resumable,
//! SHA-256-checked `PATCH /v1/attachments/{sha}`, held per town), then names the hashes in the
//! step it records. Here the step's photos are checked (uploaded by this town, within the size
//! limits, a JPEG or PNG that decodes whole) and served back, full size or as a thumbnail, to the
//! town's staff tablets and to a logged-in county supervisor, and only as part of a loop.

use std::io::Cursor;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use bianmin_protocol::sync::DeviceRole;
use futures_util::TryStreamExt;
use serde::Deserialize;

use crate::auth::AuthDevice;
use crate::error::{blocking, ApiError};
use crate::feedback::Rectification;
use crate::AppState;

/// Photos one step may carry.
pub const MAX_PHOTOS_PER_STEP: usize = 6;
/// Largest photo file: a phone camera's JPEG is 2 to 6 MB.
pub const MAX_PHOTO_BYTES: u64 = 12 * 1024 * 1024;
/// Largest photo in pixels (a 48-megapixel camera), so a small file cannot claim a huge image.
pub const MAX_PHOTO_PIXELS: u64 = 50_000_000;
/// The longer side of a thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 240;

/// The routes a staff tablet reaches, behind the device signature check.
pub fn staff_routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/v1/rectifications/{case_id}/photos/{sha}",
            get(staff_photo),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::auth::authenticate,
        ))
}

/// The county page's route (its session cookie is checked in the handler).
pub fn county_routes() -> Router<AppState> {
    Router::new().route(
        "/county/rectifications/{case_id}/photos/{sha}",
        get(county_photo),
    )
}

/// Reads a stored photo whole (it is bounded by [`MAX_PHOTO_BYTES`]).
async fn read(state: &AppState, sha: &str) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(stream) = state.objects.open(sha).await.map_err(ApiError::internal)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    let mut stream = stream;
    while let Some(chunk) = stream.try_next().await.map_err(ApiError::internal)? {
        if out.len() as u64 + chunk.len() as u64 > MAX_PHOTO_BYTES {
            return Err(ApiError::too_large(format!(
                "a photo is limited to {MAX_PHOTO_BYTES} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}

/// Whether the bytes are a JPEG or PNG within the pixel limit that decodes to the end (a
/// truncated or damaged file fails here, not on a supervisor's screen).
fn check_image(bytes: &[u8]) -> Result<image::DynamicImage, &'static str> {
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| "not an image")?;
    match reader.format() {
        // A JPEG cut short still decodes to a grey bottom: it must end with its EOI marker.
        Some(image::ImageFormat::Jpeg) if !bytes.ends_with(&[0xFF, 0xD9]) => {
            return Err("the photo is damaged")
        }
        Some(image::ImageFormat::Jpeg | image::ImageFormat::Png) => {}
        _ => return Err("not a JPEG or PNG photo"),
    }
    let (w, h) = reader
        .into_dimensions()
        .map_err(|_| "the photo is damaged")?;
    if u64::from(w) * u64::from(h) > MAX_PHOTO_PIXELS {
        return Err("the photo has too many pixels");
    }
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| "not an image")?;
    reader.no_limits();
    reader.decode().map_err(|_| "the photo is damaged")
}

/// Checks the photos a step names: at most [`MAX_PHOTOS_PER_STEP`], no repeats, each uploaded
/// by `holder` (the tablet's town), within the limits, a whole JPEG or PNG.
pub async fn check(state: &AppState, holder: &str, photos: &[String]) -> Result<(), ApiError> {
    if photos.len() > MAX_PHOTOS_PER_STEP {
        return Err(ApiError::unprocessable(
            "too_many_photos",
            format!("a step carries at most {MAX_PHOTOS_PER_STEP} photos"),
        ));
    }
    for (i, sha) in photos.iter().enumerate() {
        if !crate::digest::is_sha256(sha) || photos[..i].contains(sha) {
            return Err(ApiError::unprocessable(
                "photo_name",
                "photos are named by their distinct SHA-256",
            ));
        }
        let (st, s, h) = (state.clone(), sha.clone(), holder.to_string());
        let (held, size) =
            blocking(move || Ok((st.store.held_by(&s, &h)?, st.store.attachment_size(&s)?)))
                .await?;
        let Some(size) = size.filter(|_| held) else {
            return Err(ApiError::unprocessable(
                "photo_not_uploaded",
                format!("photo {sha} has not been uploaded by this town"),
            ));
        };
        if size > MAX_PHOTO_BYTES {
            return Err(ApiError::unprocessable(
                "photo_too_large",
                format!("a photo is limited to {MAX_PHOTO_BYTES} bytes"),
            ));
        }
        let bytes = read(state, sha).await?.ok_or_else(|| {
            ApiError::unprocessable("photo_not_uploaded", format!("photo {sha} is missing"))
        })?;
        tokio::task::spawn_blocking(move || check_image(&bytes).map(|_| ()))
            .await
            .map_err(ApiError::internal)?
            .map_err(|why| ApiError::unprocessable("photo_corrupt", why))?;
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct PhotoQuery {
    /// `thumb` for a small JPEG; anything else, the photo as uploaded.
    #[serde(default)]
    size: String,
}

/// The photo if it belongs to a step of the loop, full or as a thumbnail.
async fn serve(
    state: &AppState,
    lp: &Rectification,
    sha: &str,
    thumb: bool,
) -> Result<Response, ApiError> {
    if !lp.steps.iter().any(|s| s.photos.iter().any(|p| p == sha)) {
        return Err(ApiError::not_found("no such photo in this loop"));
    }
    let bytes = read(state, sha)
        .await?
        .ok_or_else(|| ApiError::not_found("no such photo"))?;
    let (body, kind) = if thumb {
        let small = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
            let img = check_image(&bytes).map_err(str::to_string)?;
            let t = img.thumbnail(THUMB_SIDE, THUMB_SIDE).into_rgb8();
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
                .encode_image(&t)
                .map_err(|e| e.to_string())?;
            Ok(out)
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
        (small, "image/jpeg")
    } else {
        let kind = match image::guess_format(&bytes) {
            Ok(image::ImageFormat::Png) => "image/png",
            _ => "image/jpeg",
        };
        (bytes, kind)
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        Body::from(body),
    )
        .into_response())
}

async fn loop_of(state: &AppState, case_id: &str) -> Result<Rectification, ApiError> {
    let (st, id) = (state.clone(), case_id.to_string());
    blocking(move || st.store.rectification(&id))
        .await?
        .ok_or_else(|| ApiError::not_found("no bad review is open for this case"))
}

/// GET /v1/rectifications/{case_id}/photos/{sha}[?size=thumb]: a staff tablet of the case's town.
async fn staff_photo(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Path((case_id, sha)): Path<(String, String)>,
    Query(q): Query<PhotoQuery>,
) -> Result<Response, ApiError> {
    if d.role != DeviceRole::Staff {
        return Err(ApiError::forbidden("only a town staff device may do this"));
    }
    let lp = loop_of(&state, &case_id).await?;
    if state
        .divisions()
        .village(&lp.village)
        .is_none_or(|(t, _)| t.code != d.town)
    {
        return Err(ApiError::forbidden("that case is not in this town"));
    }
    serve(&state, &lp, &sha, q.size == "thumb").await
}

/// GET /county/rectifications/{case_id}/photos/{sha}[?size=thumb]: a logged-in supervisor.
async fn county_photo(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((case_id, sha)): Path<(String, String)>,
    Query(q): Query<PhotoQuery>,
) -> Response {
    if let Err(r) = crate::oversight::session(&state, &headers).await {
        return r;
    }
    let served = async {
        let lp = loop_of(&state, &case_id).await?;
        serve(&state, &lp, &sha, q.size == "thumb").await
    }
    .await;
    served.unwrap_or_else(|e| {
        if e.status == StatusCode::NOT_FOUND {
            crate::page::message_page(StatusCode::NOT_FOUND, "没有这张照片", "请返回整改列表。")
        } else {
            e.into_response()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 128]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
            .encode_image(&img)
            .unwrap();
        out
    }

    #[test]
    fn whole_photos_pass_and_damaged_or_foreign_files_do_not() {
        assert!(check_image(&jpeg(64, 48)).is_ok());
        let cut = jpeg(640, 480);
        assert_eq!(
            check_image(&cut[..cut.len() / 2]).unwrap_err(),
            "the photo is damaged"
        );
        assert_eq!(
            check_image(b"GIF89a\x01\x00\x01\x00").unwrap_err(),
            "not a JPEG or PNG photo"
        );
        assert_eq!(
            check_image(b"hello, not a photo").unwrap_err(),
            "not a JPEG or PNG photo"
        );
    }
}
