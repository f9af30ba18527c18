//! What each printed notice says: 受理通知书, 补正材料通知书 (一次性告知), 不予受理通知书 (with the
//! reason and the appeal route) and the case packet for the county, composed from a case's facts.
//!
//! Legal wording cites rules that exist and only where they apply: the 行政许可法 articles only for
//! an item of kind 行政许可; the appeal route (行政复议法 第二十条 and 第二十四条, 行政诉讼法 第四十六条)
//! on every refusal. Phone numbers come from the published reference data; where it has none the
//! notice prints a marked blank for the clerk to fill in by hand, never an invented number.

use chrono::NaiveDate;

use super::layout::{Sheet, BODY};

/// The kinds of printed notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// 受理通知书.
    Acceptance,
    /// 补正材料通知书.
    Correction,
    /// 不予受理通知书.
    Refusal,
    /// 案件材料 for the county: the form and every page.
    Packet,
}

impl NoticeKind {
    /// The kind named in a URL.
    pub fn parse(s: &str) -> Option<NoticeKind> {
        Some(match s {
            "acceptance" => NoticeKind::Acceptance,
            "correction" => NoticeKind::Correction,
            "refusal" => NoticeKind::Refusal,
            "packet" => NoticeKind::Packet,
            _ => return None,
        })
    }

    /// The name in URLs and file names.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Acceptance => "acceptance",
            NoticeKind::Correction => "correction",
            NoticeKind::Refusal => "refusal",
            NoticeKind::Packet => "packet",
        }
    }

    /// The document's title.
    pub fn title(self) -> &'static str {
        match self {
            NoticeKind::Acceptance => "受理通知书",
            NoticeKind::Correction => "补正材料通知书",
            NoticeKind::Refusal => "不予受理通知书",
            NoticeKind::Packet => "案件材料（转县）",
        }
    }
}

/// What every notice names.
#[derive(Debug, Clone)]
pub struct Facts {
    pub case_id: String,
    pub item_code: String,
    pub item_name: String,
    /// 事项类型 (行政许可, 行政确认, 公共服务 …): decides which rules are cited.
    pub item_kind: String,
    /// The applicant's full name: a notice goes to that resident alone.
    pub applicant: String,
    /// The day the town received the application (China time).
    pub received_on: NaiveDate,
    /// The issuing town, from the published administrative tree.
    pub town_name: String,
    pub county_name: String,
    /// The item's supervision contact from the reference data (label, phone; the phone may be
    /// empty until the county publishes it).
    pub contact: Option<(String, String)>,
}

/// One entry of the 补正 list as printed.
#[derive(Debug, Clone)]
pub struct MissingLine {
    /// The material or field as the guide names it, with 原件/复印件 for a material.
    pub what: String,
    /// What is wrong and what to bring.
    pub note: String,
}

/// The marked blank printed where the reference data has no value.
pub const BLANK: &str = "＿＿＿＿＿＿＿＿（参考数据未载明，由经办人填写）";

fn date(d: NaiveDate) -> String {
    d.format("%Y年%-m月%-d日").to_string()
}

fn is_licence(f: &Facts) -> bool {
    f.item_kind == "行政许可"
}

fn header(s: &mut Sheet, kind: NoticeKind, f: &Facts) {
    s.title(&format!("{}综合便民服务中心", f.town_name), 15.0);
    s.title(kind.title(), 22.0);
    s.right(&format!("编号：{}", f.case_id), 10.5);
    s.gap(8.0);
}

fn contact_lines(s: &mut Sheet, f: &Facts) {
    s.field(
        "本中心联系电话",
        // The reference data carries no town phone numbers (only the county's contacts).
        BLANK,
    );
    match &f.contact {
        Some((label, phone)) if !phone.trim().is_empty() => s.field(label, phone),
        Some((label, _)) => s.field(label, BLANK),
        None => {}
    }
}

fn signature(s: &mut Sheet, f: &Facts, on: NaiveDate) {
    s.gap(24.0);
    s.right(&format!("{}综合便民服务中心（印章）", f.town_name), BODY);
    s.right(&date(on), BODY);
}

/// 受理通知书: the application is accepted on `accepted_on`; the result is promised by `deadline`.
pub fn acceptance(
    s: &mut Sheet,
    f: &Facts,
    accepted_on: NaiveDate,
    deadline: Option<NaiveDate>,
    promised_days: Option<u32>,
) {
    header(s, NoticeKind::Acceptance, f);
    s.para(&format!("{}：", f.applicant), BODY, 0);
    let basis = if is_licence(f) {
        "根据《中华人民共和国行政许可法》第三十二条第一款第（五）项的规定，"
    } else {
        ""
    };
    s.para(
        &format!(
            "你于{}提交的“{}”（事项编码 {}）申请，经审查，申请材料齐全、符合规定形式，{}本中心决定予以受理。",
            date(f.received_on),
            f.item_name,
            f.item_code,
            basis
        ),
        BODY,
        2,
    );
    let promise = match (promised_days, deadline) {
        (Some(n), Some(d)) => format!(
            "本事项承诺办理时限为{n}个工作日（自受理次日起计算），预计于{}前办结。办理结果将通过村代办员或短信告知你。",
            date(d)
        ),
        (_, Some(d)) => format!(
            "本事项预计于{}前办结。办理结果将通过村代办员或短信告知你。",
            date(d)
        ),
        _ => "办理结果将通过村代办员或短信告知你。".to_string(),
    };
    s.para(&promise, BODY, 2);
    s.para(
        &format!(
            "查询进度请凭受理编号 {} 咨询本中心或你的村代办员。",
            f.case_id
        ),
        BODY,
        2,
    );
    s.gap(6.0);
    contact_lines(s, f);
    signature(s, f, accepted_on);
}

/// 补正材料通知书: every missing material and problem at once (一次性告知).
pub fn correction(
    s: &mut Sheet,
    f: &Facts,
    requested_on: NaiveDate,
    missing: &[MissingLine],
    note: &str,
) {
    header(s, NoticeKind::Correction, f);
    s.para(&format!("{}：", f.applicant), BODY, 0);
    let basis = if is_licence(f) {
        "根据《中华人民共和国行政许可法》第三十二条第一款第（四）项的规定，"
    } else {
        ""
    };
    s.para(
        &format!(
            "你于{}提交的“{}”（事项编码 {}）申请，经审查，申请材料不齐全或者不符合规定形式。{}现一次性告知你需要补正的全部内容（共{}项）：",
            date(f.received_on),
            f.item_name,
            f.item_code,
            basis,
            missing.len()
        ),
        BODY,
        2,
    );
    for (i, m) in missing.iter().enumerate() {
        s.para(&format!("{}. {}：{}", i + 1, m.what, m.note), BODY, 2);
    }
    if !note.trim().is_empty() {
        s.para(&format!("说明：{}", note.trim()), BODY, 2);
    }
    s.para(
        "请按上述要求一次补齐，交村代办员重新拍照提交，或者到本中心窗口提交。除上述内容外，本中心不再要求补正其他材料。",
        BODY,
        2,
    );
    s.gap(6.0);
    contact_lines(s, f);
    signature(s, f, requested_on);
}

/// 不予受理通知书: the reason and the appeal route.
pub fn refusal(s: &mut Sheet, f: &Facts, refused_on: NaiveDate, reason: &str) {
    header(s, NoticeKind::Refusal, f);
    s.para(&format!("{}：", f.applicant), BODY, 0);
    let basis = if is_licence(f) {
        "根据《中华人民共和国行政许可法》第三十二条的规定，"
    } else {
        ""
    };
    s.para(
        &format!(
            "你于{}提交的“{}”（事项编码 {}）申请，经审查，{}本中心决定不予受理。理由如下：",
            date(f.received_on),
            f.item_name,
            f.item_code,
            basis
        ),
        BODY,
        2,
    );
    s.para(reason.trim(), BODY, 2);
    s.para(
        &format!(
            "如对本决定不服，可以自收到本通知书之日起六十日内向{}人民政府申请行政复议（《中华人民共和国行政复议法》第二十条、第二十四条），或者自收到本通知书之日起六个月内依法向人民法院提起行政诉讼（《中华人民共和国行政诉讼法》第四十六条）。",
            f.county_name
        ),
        BODY,
        2,
    );
    s.gap(6.0);
    contact_lines(s, f);
    signature(s, f, refused_on);
}

/// The first page(s) of the county packet: the case as the town holds it; the page images follow.
pub struct PacketForm<'a> {
    pub id_number: &'a str,
    pub phone: &'a str,
    pub address: &'a str,
    pub village_name: &'a str,
    pub agent: &'a str,
    pub state_label: &'a str,
    /// Form answers as (label, value).
    pub answers: Vec<(String, String)>,
    /// Materials as (name, page count).
    pub materials: Vec<(String, usize)>,
    /// The town's 初审 findings.
    pub town_check: &'a [String],
    /// Timeline lines, oldest first.
    pub timeline: Vec<String>,
}

/// The packet's form pages.
pub fn packet_form(s: &mut Sheet, f: &Facts, p: &PacketForm<'_>) {
    header(s, NoticeKind::Packet, f);
    s.field(
        "事项",
        &format!("{}（{}，{}）", f.item_name, f.item_code, f.item_kind),
    );
    s.field("申请人", &f.applicant);
    s.field("身份证号码", p.id_number);
    s.field(
        "联系电话",
        if p.phone.is_empty() {
            "（未填）"
        } else {
            p.phone
        },
    );
    if !p.address.is_empty() {
        s.field("住址", p.address);
    }
    s.field("所在村", p.village_name);
    s.field("首问代办员", p.agent);
    s.field("收件日期", &date(f.received_on));
    s.field("当前状态", p.state_label);
    s.rule();
    s.para("申请表", 14.0, 0);
    if p.answers.is_empty() {
        s.para("（本事项无申请表字段）", BODY, 0);
    }
    for (label, value) in &p.answers {
        s.field(label, value);
    }
    s.rule();
    s.para("申请材料", 14.0, 0);
    for (name, pages) in &p.materials {
        s.field(name, &format!("{pages}页（附后）"));
    }
    if !p.town_check.is_empty() {
        s.rule();
        s.para("镇初审发现的问题", 14.0, 0);
        for line in p.town_check {
            s.para(&format!("· {line}"), BODY, 0);
        }
    }
    s.rule();
    s.para("办理经过", 14.0, 0);
    for line in &p.timeline {
        s.para(line, BODY, 0);
    }
}
