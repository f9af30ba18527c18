//! The Alibaba Cloud SMS adapter: `SendSms` (API version 2017-05-25) over the RPC protocol,
//! signed with signature version 1.0 (HMAC-SHA1) exactly as Alibaba Cloud documents it: sort the
//! parameters, percent-encode names and values by RFC 3986, join them, prefix
//! `POST&%2F&` and percent-encode the joined string once more, then HMAC-SHA1 with the
//! AccessKey secret plus `&` as the key and Base64 the result.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha1::Sha1;

use super::{BoxFuture, SendError, SmsMessage, SmsProvider};

/// Alibaba Cloud's public SMS endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://dysmsapi.aliyuncs.com/";

/// Percent-encodes one name or value as the signature requires: RFC 3986 unreserved characters
/// stay, everything else (UTF-8 bytes) becomes `%XY`, a space `%20`, never `+`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The canonicalised query string: every parameter but `Signature`, sorted by name, encoded.
pub fn canonical_query(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .filter(|(k, _)| k.as_str() != "Signature")
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `METHOD&%2F&encode(canonical query)`.
pub fn string_to_sign(method: &str, params: &BTreeMap<String, String>) -> String {
    format!(
        "{method}&{}&{}",
        percent_encode("/"),
        percent_encode(&canonical_query(params))
    )
}

/// Base64(HMAC-SHA1(secret + "&", string to sign)).
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(format!("{secret}&").as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(string_to_sign.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Account settings of the adapter.
#[derive(Clone)]
pub struct AliyunConfig {
    pub endpoint: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    /// The approved 短信签名, shown as 【SignName】.
    pub sign_name: String,
    /// The approved template's code (`SMS_…`).
    pub template_code: String,
    /// How long one request may take before it counts as failed and is retried later.
    pub timeout: Duration,
}

impl std::fmt::Debug for AliyunConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log.
        f.debug_struct("AliyunConfig")
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("sign_name", &self.sign_name)
            .field("template_code", &self.template_code)
            .finish_non_exhaustive()
    }
}

/// Sends through Alibaba Cloud SMS.
pub struct AliyunSms {
    config: AliyunConfig,
    client: reqwest::Client,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Reply {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    biz_id: String,
}

impl AliyunSms {
    pub fn new(config: AliyunConfig) -> Result<AliyunSms, reqwest::Error> {
        let client = reqwest::Client::builder().timeout(config.timeout).build()?;
        Ok(AliyunSms { config, client })
    }

    /// Every parameter of the `SendSms` request for `msg`, signed.
    pub fn signed_params(
        &self,
        msg: &SmsMessage,
        timestamp: chrono::DateTime<chrono::Utc>,
        nonce: &str,
    ) -> BTreeMap<String, String> {
        let c = &self.config;
        let template_param: serde_json::Map<String, serde_json::Value> = msg
            .params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let mut p: BTreeMap<String, String> = [
            ("AccessKeyId", c.access_key_id.clone()),
            ("Action", "SendSms".into()),
            ("Format", "JSON".into()),
            ("OutId", msg.out_id.clone()),
            ("PhoneNumbers", msg.phone.clone()),
            ("RegionId", "cn-hangzhou".into()),
            ("SignName", c.sign_name.clone()),
            ("SignatureMethod", "HMAC-SHA1".into()),
            ("SignatureNonce", nonce.to_string()),
            ("SignatureVersion", "1.0".into()),
            ("TemplateCode", c.template_code.clone()),
            (
                "TemplateParam",
                serde_json::Value::Object(template_param).to_string(),
            ),
            (
                "Timestamp",
                timestamp.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ),
            ("Version", "2017-05-25".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let sig = signature(&c.access_key_secret, &string_to_sign("POST", &p));
        p.insert("Signature".into(), sig);
        p
    }

    async fn send_now(&self, msg: &SmsMessage) -> Result<String, SendError> {
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let params = self.signed_params(msg, chrono::Utc::now(), &nonce);
        let body = format!(
            "{}&Signature={}",
            canonical_query(&params),
            percent_encode(&params["Signature"])
        );
        let resp = self
            .client
            .post(&self.config.endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::Retry(format!("request: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| SendError::Retry(format!("reply: {e}")))?;
        let reply: Reply = serde_json::from_str(&text).map_err(|_| {
            SendError::Retry(format!(
                "HTTP {status}, unreadable reply: {}",
                text.chars().take(200).collect::<String>()
            ))
        })?;
        match reply.code.as_str() {
            "OK" => Ok(reply.biz_id),
            // The number itself is wrong: retrying cannot help.
            "isv.MOBILE_NUMBER_ILLEGAL" | "isv.MOBILE_COUNT_OVER_LIMIT" => Err(
                SendError::Permanent(format!("{}: {}", reply.code, reply.message)),
            ),
            // Throttling, provider faults and account or template settings an operator can
            // fix: the message waits in the outbox.
            _ => Err(SendError::Retry(format!(
                "HTTP {status} {}: {}",
                reply.code, reply.message
            ))),
        }
    }
}

impl SmsProvider for AliyunSms {
    fn name(&self) -> &str {
        "aliyun"
    }

    fn send<'a>(&'a self, msg: &'a SmsMessage) -> BoxFuture<'a, Result<String, SendError>> {
        Box::pin(self.send_now(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Alibaba Cloud's documented worked example of signature version 1.0 (the `DescribeRegions`
    /// call with AccessKey `testid` / `testsecret`, "API 签名机制（示例）").
    #[test]
    fn the_documented_example_signs_as_documented() {
        let params: BTreeMap<String, String> = [
            ("TimeStamp", "2016-02-23T12:46:24Z"),
            ("Format", "XML"),
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("Version", "2014-05-26"),
            ("SignatureVersion", "1.0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sts = string_to_sign("GET", &params);
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML\
             %26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf\
             %26SignatureVersion%3D1.0%26TimeStamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(
            signature("testsecret", &sts),
            "CT9X0VtwR86fNWSnsc6v8YGOjuE="
        );
    }

    #[test]
    fn chinese_and_reserved_characters_are_encoded_as_rfc3986() {
        assert_eq!(percent_encode("a b*~"), "a%20b%2A~");
        assert_eq!(percent_encode("便民"), "%E4%BE%BF%E6%B0%91");
        assert_eq!(percent_encode("{\"a\":1}"), "%7B%22a%22%3A1%7D");
    }
}
