//! Documents the town renders for its staff tablets: printed notices of a case as PDF and the
//! town's case list as `.xlsx`. The bytes stay in memory, as attachments do; the caller decides
//! where they go. A tablet does not keep or hand them on (a notice names a resident, and nothing
//! of a case may leave the app's encrypted store): it asks the town to print a notice on the
//! town centre's own printer instead ([`Transport::print_notice`]).

use bianmin_protocol::sync::{PrintRequest, PrintedNotice};
use reqwest::Method;

use super::{classify, sha256_hex, Transport, TransportError};

/// The largest document accepted: a case packet carries every page (each at most 32 MiB, in
/// practice a few hundred KiB), so this bounds memory, not a real packet.
pub const MAX_DOCUMENT: u64 = 128 * 1024 * 1024;

/// A printed notice of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// 受理通知书.
    Acceptance,
    /// 补正材料通知书.
    Correction,
    /// 不予受理通知书.
    Refusal,
    /// The case packet for the county (form and every page).
    Packet,
}

impl NoticeKind {
    /// The name in the route.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Acceptance => "acceptance",
            NoticeKind::Correction => "correction",
            NoticeKind::Refusal => "refusal",
            NoticeKind::Packet => "packet",
        }
    }

    /// The document's Chinese name.
    pub fn label(self) -> &'static str {
        match self {
            NoticeKind::Acceptance => "受理通知书",
            NoticeKind::Correction => "补正材料通知书",
            NoticeKind::Refusal => "不予受理通知书",
            NoticeKind::Packet => "转县案件材料",
        }
    }
}

fn bad(what: &str) -> TransportError {
    TransportError::Rejected {
        status: 0,
        code: "bad_request".into(),
        message: what.to_string(),
        missing: vec![],
        upload_offset: None,
    }
}

/// The id ends up in the URL path: refuse anything that could change the path's meaning.
fn check_case_id(case_id: &str) -> Result<(), TransportError> {
    if case_id.is_empty()
        || !case_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(bad("case id may only hold letters, digits and '-'"));
    }
    Ok(())
}

impl Transport {
    /// `GET /v1/cases/{id}/notices/{kind}`: a printed notice as PDF (audited by the server).
    pub async fn notice(&self, case_id: &str, kind: NoticeKind) -> Result<Vec<u8>, TransportError> {
        check_case_id(case_id)?;
        self.download(&format!("/v1/cases/{case_id}/notices/{}", kind.as_str()))
            .await
    }

    /// `POST /v1/cases/{id}/notices/{kind}/print`: prints a notice on the town centre's own
    /// printer, as the person in `req` (audited by the server). A town without a printer
    /// (`printer_not_configured`) and a printer that failed (`printer_failed`) are refusals,
    /// not retried by themselves: someone has to look at the printer first.
    pub async fn print_notice(
        &self,
        case_id: &str,
        kind: NoticeKind,
        req: &PrintRequest,
    ) -> Result<PrintedNotice, TransportError> {
        check_case_id(case_id)?;
        let body = serde_json::to_vec(req).expect("print requests serialize");
        self.call(
            Method::POST,
            &format!("/v1/cases/{case_id}/notices/{}/print", kind.as_str()),
            Some(body),
        )
        .await
    }

    /// `GET /v1/cases.xlsx?{query}`: the town's case list for re-keying, full names and ID
    /// numbers included (audited by the server). `query` is e.g. `state=accepted&from=2026-11-01`.
    pub async fn case_list(&self, query: &str) -> Result<Vec<u8>, TransportError> {
        if query.contains(['#', ' ']) {
            return Err(bad("the query may not hold '#' or spaces"));
        }
        let pq = if query.is_empty() {
            "/v1/cases.xlsx".to_string()
        } else {
            format!("/v1/cases.xlsx?{query}")
        };
        self.download(&pq).await
    }

    async fn download(&self, pq: &str) -> Result<Vec<u8>, TransportError> {
        let mut resp = self
            .exchange(|| self.signed(Method::GET, pq, &sha256_hex(b""), None))
            .await?;
        let too_big = || TransportError::Rejected {
            status: 0,
            code: "too_large".into(),
            message: format!("document larger than {MAX_DOCUMENT} bytes"),
            missing: vec![],
            upload_offset: None,
        };
        if resp.content_length().is_some_and(|n| n > MAX_DOCUMENT) {
            return Err(too_big());
        }
        let mut bytes = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            if bytes.len() as u64 + chunk.len() as u64 > MAX_DOCUMENT {
                return Err(too_big());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}
