//! Just enough of the Kubernetes protobuf encoding to accept what kubectl sends as
//! protobuf: `kubectl create namespace` posts a `v1.Namespace` that way. Other kinds
//! arrive as JSON from every client the sim supports.

use serde_json::{Map, Value, json};

use super::error::ApiError;
use crate::store::ResourceKind;

/// Prefix of every Kubernetes protobuf body (`runtime.Unknown` envelope follows).
const MAGIC: &[u8] = b"k8s\x00";

fn malformed(what: &str) -> ApiError {
    ApiError::BadRequest(format!("failed to decode protobuf body: {what}"))
}

/// One protobuf field: a length-delimited one (number and bytes), or one the sim skips.
enum Field<'a> {
    Bytes(u32, &'a [u8]),
    Skipped,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| malformed("truncated varint"))?;
            self.buf = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("varint too long"))
    }

    fn next_field(&mut self) -> Result<Option<Field<'a>>, ApiError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| malformed("field number"))?;
        match key & 7 {
            0 => self.varint().map(|_| Some(Field::Skipped)),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| malformed("length"))?;
                if len > self.buf.len() {
                    return Err(malformed("truncated field"));
                }
                let (bytes, rest) = self.buf.split_at(len);
                self.buf = rest;
                Ok(Some(Field::Bytes(number, bytes)))
            }
            1 => self.skip(8).map(|_| Some(Field::Skipped)),
            5 => self.skip(4).map(|_| Some(Field::Skipped)),
            _ => Err(malformed("unsupported wire type")),
        }
    }

    fn skip(&mut self, n: usize) -> Result<(), ApiError> {
        if n > self.buf.len() {
            return Err(malformed("truncated fixed field"));
        }
        self.buf = &self.buf[n..];
        Ok(())
    }
}

fn fields(buf: &[u8]) -> Result<Vec<Field<'_>>, ApiError> {
    let mut reader = Reader { buf };
    let mut out = Vec::new();
    while let Some(field) = reader.next_field()? {
        out.push(field);
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed("string is not UTF-8"))
}

/// A `map<string,string>` entry.
fn map_entry(bytes: &[u8]) -> Result<(String, String), ApiError> {
    let (mut key, mut value) = (String::new(), String::new());
    for field in fields(bytes)? {
        match field {
            Field::Bytes(1, b) => key = text(b)?,
            Field::Bytes(2, b) => value = text(b)?,
            _ => {}
        }
    }
    Ok((key, value))
}

/// ObjectMeta: the fields a client sets on create.
fn object_meta(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut meta = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut finalizers = Vec::new();
    for field in fields(bytes)? {
        match field {
            Field::Bytes(1, b) => {
                meta.insert("name".into(), json!(text(b)?));
            }
            Field::Bytes(2, b) => {
                meta.insert("generateName".into(), json!(text(b)?));
            }
            Field::Bytes(3, b) => {
                meta.insert("namespace".into(), json!(text(b)?));
            }
            Field::Bytes(11, b) => {
                let (k, v) = map_entry(b)?;
                labels.insert(k, json!(v));
            }
            Field::Bytes(12, b) => {
                let (k, v) = map_entry(b)?;
                annotations.insert(k, json!(v));
            }
            Field::Bytes(14, b) => finalizers.push(json!(text(b)?)),
            _ => {}
        }
    }
    for (key, value) in [("labels", labels), ("annotations", annotations)] {
        if !value.is_empty() {
            meta.insert(key.into(), Value::Object(value));
        }
    }
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), json!(finalizers));
    }
    Ok(Value::Object(meta))
}

/// Decodes a protobuf-encoded body of `kind` into its JSON form.
pub fn decode(kind: ResourceKind, body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("missing the k8s protobuf prefix"))?;
    let mut raw = None;
    let (mut api_version, mut type_kind) = (String::new(), String::new());
    for field in fields(envelope)? {
        match field {
            Field::Bytes(1, type_meta) => {
                for f in fields(type_meta)? {
                    match f {
                        Field::Bytes(1, b) => api_version = text(b)?,
                        Field::Bytes(2, b) => type_kind = text(b)?,
                        _ => {}
                    }
                }
            }
            Field::Bytes(2, bytes) => raw = Some(bytes),
            _ => {}
        }
    }
    if kind != ResourceKind::Namespace || type_kind != "Namespace" {
        return Err(ApiError::UnsupportedMediaType(
            "application/json, application/yaml (protobuf only for namespaces)",
        ));
    }
    let mut object = json!({"apiVersion": api_version, "kind": type_kind});
    for field in fields(raw.ok_or_else(|| malformed("no object in the envelope"))?)? {
        if let Field::Bytes(1, meta) = field {
            object["metadata"] = object_meta(meta)?;
        }
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_field(number: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![
            (number << 3) | 2,
            u8::try_from(payload.len()).expect("short"),
        ];
        out.extend_from_slice(payload);
        out
    }

    fn namespace_body(name: &str) -> Vec<u8> {
        let type_meta = [bytes_field(1, b"v1"), bytes_field(2, b"Namespace")].concat();
        let label = [bytes_field(1, b"team"), bytes_field(2, b"db")].concat();
        let meta = [bytes_field(1, name.as_bytes()), bytes_field(11, &label)].concat();
        let object = bytes_field(1, &meta);
        let envelope = [bytes_field(1, &type_meta), bytes_field(2, &object)].concat();
        [MAGIC, envelope.as_slice()].concat()
    }

    #[test]
    fn decodes_a_namespace_as_kubectl_sends_it() {
        let ns = decode(ResourceKind::Namespace, &namespace_body("t1")).expect("decodes");
        assert_eq!(ns["kind"], "Namespace");
        assert_eq!(ns["metadata"]["name"], "t1");
        assert_eq!(ns["metadata"]["labels"]["team"], "db");
    }

    #[test]
    fn rejects_garbage_and_other_kinds() {
        assert_eq!(
            decode(ResourceKind::Namespace, b"k8s\x00\x0a\xff")
                .expect_err("truncated")
                .code(),
            400
        );
        assert_eq!(
            decode(ResourceKind::Namespace, b"{}")
                .expect_err("no magic")
                .code(),
            400
        );
        let body = namespace_body("t1");
        assert_eq!(
            decode(ResourceKind::Pod, &body).expect_err("pod").code(),
            415
        );
    }
}
