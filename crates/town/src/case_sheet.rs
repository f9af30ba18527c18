//! The town's case list as `.xlsx`, for re-keying into the provincial platform until it has an
//! interface: one row per case with what the platform asks for, filtered like the tablet's inbox.
//!
//! `GET /v1/cases.xlsx?village=&state=&from=&to=` (received between `from` and `to`, China dates,
//! both included). Unlike the inbox, the list carries full names and ID numbers: re-keying needs
//! them. It is therefore for town staff tablets only, and every export is audited with its filter
//! and row count (see SECURITY.md).

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use bianmin_protocol::sync::DeviceRole;
use bianmin_protocol::{CaseState, Decision};
use chrono::NaiveDate;
use rust_xlsxwriter::{Format, Workbook, XlsxError};
use serde::Deserialize;

use crate::audit::AuditDraft;
use crate::auth::AuthDevice;
use crate::error::{blocking, ApiError};
use crate::time::china_date;
use crate::AppState;

/// The routes of this area, behind the device signature check.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/cases.xlsx", get(export))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::auth::authenticate,
        ))
}

/// The filter: the inbox's village and state, and a period of receipt.
#[derive(Debug, Default, Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    pub village: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    /// First day of the period (YYYY-MM-DD, China time), included.
    #[serde(default)]
    pub from: Option<String>,
    /// Last day of the period, included.
    #[serde(default)]
    pub to: Option<String>,
}

/// One exported case.
#[derive(Debug, Clone)]
pub struct CaseLine {
    pub case_id: String,
    pub item_code: String,
    pub item_name: String,
    pub applicant: String,
    pub id_number: String,
    pub village_name: String,
    pub received_on: NaiveDate,
    pub accepted_on: Option<NaiveDate>,
    pub deadline: Option<NaiveDate>,
    pub state: CaseState,
    /// 办理结果: the result, the refusal's reason or the note sent with the case to the county.
    pub result: String,
    pub agent: String,
}

/// The column headings, in order.
pub const HEADINGS: [&str; 12] = [
    "案件编号",
    "事项编码",
    "事项名称",
    "申请人姓名",
    "身份证号码",
    "所在村",
    "收件日期",
    "受理日期",
    "承诺办结日期",
    "办理状态",
    "办理结果",
    "首问代办员",
];

/// The workbook: one sheet `案件`, headings in bold and frozen. Every cell is text, so an ID
/// number keeps its 18 digits (as a number Excel would round it to 15) and dates read as typed.
pub fn workbook(lines: &[CaseLine]) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("案件")?;
    let bold = Format::new().set_bold();
    let text = Format::new().set_num_format("@");
    let widths = [34, 10, 30, 12, 22, 22, 12, 12, 14, 10, 30, 12];
    for (c, (h, w)) in HEADINGS.iter().zip(widths).enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &bold)?;
        ws.set_column_width(c as u16, w)?;
    }
    ws.set_freeze_panes(1, 0)?;
    let day = |d: Option<NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
    for (i, l) in lines.iter().enumerate() {
        let row = i as u32 + 1;
        let cells = [
            l.case_id.clone(),
            l.item_code.clone(),
            l.item_name.clone(),
            l.applicant.clone(),
            l.id_number.clone(),
            l.village_name.clone(),
            l.received_on.format("%Y-%m-%d").to_string(),
            day(l.accepted_on).unwrap_or_default(),
            day(l.deadline).unwrap_or_default(),
            l.state.label().to_string(),
            l.result.clone(),
            l.agent.clone(),
        ];
        for (c, v) in cells.iter().enumerate() {
            ws.write_string_with_format(row, c as u16, v, &text)?;
        }
    }
    if !lines.is_empty() {
        ws.autofilter(0, 0, lines.len() as u32, HEADINGS.len() as u16 - 1)?;
    }
    wb.save_to_buffer()
}

fn parse_day(s: &Option<String>, name: &str) -> Result<Option<NaiveDate>, ApiError> {
    match s.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| {
                ApiError::bad_request(format!("{name} must be a date YYYY-MM-DD, not {v}"))
            }),
    }
}

fn result_of(d: &Option<Decision>) -> String {
    match d {
        Some(Decision::Completed { result, delivery }) => {
            format!("{result}（{}）", delivery.label())
        }
        Some(Decision::Refused { reason }) => format!("不予受理：{reason}"),
        Some(Decision::Forwarded { note }) if !note.is_empty() => format!("转县：{note}"),
        _ => String::new(),
    }
}

/// GET /v1/cases.xlsx: the filtered case list of the tablet's town.
async fn export(
    State(state): State<AppState>,
    Extension(AuthDevice(d)): Extension<AuthDevice>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    if d.role != DeviceRole::Staff {
        return Err(ApiError::forbidden("only a town staff device may do this"));
    }
    let divisions = state.divisions();
    let villages = match &q.village {
        Some(v) => {
            let in_town = divisions.village(v).is_some_and(|(t, _)| t.code == d.town);
            if !in_town {
                return Err(ApiError::forbidden("that village is not in this town"));
            }
            vec![v.clone()]
        }
        None => divisions.villages_of(&d.town),
    };
    let want_state = match &q.state {
        Some(s) => Some(
            CaseState::parse(s)
                .ok_or_else(|| ApiError::bad_request(format!("unknown state {s}")))?,
        ),
        None => None,
    };
    let (from, to) = (parse_day(&q.from, "from")?, parse_day(&q.to, "to")?);
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(ApiError::bad_request("from is after to"));
        }
    }
    let st = state.clone();
    let scope = villages.clone();
    let cases = blocking(move || st.store.cases_of(&scope)).await?;
    let mut lines: Vec<CaseLine> = cases
        .into_iter()
        .filter(|sc| villages.contains(&sc.case.village))
        .filter(|sc| want_state.is_none_or(|s| sc.case.state == s))
        .filter(|sc| {
            let on = china_date(sc.received_at);
            from.is_none_or(|f| on >= f) && to.is_none_or(|t| on <= t)
        })
        .map(|sc| CaseLine {
            item_name: state
                .item_name(sc.case.catalog_version, &sc.case.item)
                .unwrap_or_default(),
            village_name: divisions
                .village_full_name(&sc.case.village)
                .unwrap_or_default(),
            case_id: sc.case.id.to_string(),
            item_code: sc.case.item.clone(),
            applicant: sc.case.applicant.name.clone(),
            id_number: sc.case.applicant.id_number.clone(),
            received_on: china_date(sc.received_at),
            accepted_on: sc.case.accepted_on,
            deadline: sc.case.deadline,
            state: sc.case.state,
            result: result_of(&sc.case.last_decision),
            agent: sc.case.responsible.name.clone(),
        })
        .collect();
    lines.sort_by(|a, b| (a.received_on, &a.case_id).cmp(&(b.received_on, &b.case_id)));
    let count = lines.len();
    let bytes = tokio::task::spawn_blocking(move || workbook(&lines))
        .await?
        .map_err(ApiError::internal)?;
    // The filter is recorded (it names no person); the rows carry full ID numbers.
    let audit = AuditDraft::new(
        &d.id,
        "export_cases",
        None,
        format!(
            "{count} rows with full names and ID numbers for re-keying; village={} state={} from={} to={}",
            q.village.as_deref().unwrap_or("*"),
            q.state.as_deref().unwrap_or("*"),
            q.from.as_deref().unwrap_or("*"),
            q.to.as_deref().unwrap_or("*"),
        ),
    );
    let st = state.clone();
    blocking(move || st.store.commit(None, &[], vec![audit])).await?;
    let mut resp = Response::new(Body::from(bytes));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"cases.xlsx\""),
    );
    Ok(resp)
}
