//! Endpoint policy documents compared as what they mean, not as text: EC2
//! gives a policy back reformatted (its own spacing and key order), and an
//! endpoint with no policy set shows EC2's full-access default. Comparing
//! the text would see drift on every pass; comparing parsed JSON (objects
//! are key-sorted maps) with the default read as none sees only a real
//! change.

use serde_json::Value;

/// The policy `text` parsed, or why it is not a JSON object.
pub fn parse(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err("a policy document is a JSON object".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether `doc` is EC2's default endpoint policy: one statement allowing
/// every action on every resource to every principal (with or without a
/// `Version`).
pub fn is_default(doc: &Value) -> bool {
    let Some(statements) = doc.get("Statement") else {
        return false;
    };
    let one = match statements {
        Value::Array(a) if a.len() == 1 => &a[0],
        Value::Object(_) => statements,
        _ => return false,
    };
    let star = |k: &str| match one.get(k) {
        Some(Value::String(s)) => s == "*",
        Some(Value::Array(a)) => a.len() == 1 && a[0] == "*",
        _ => false,
    };
    one.get("Effect") == Some(&Value::String("Allow".to_string()))
        && star("Principal")
        && star("Action")
        && star("Resource")
        && one.get("Condition").is_none()
}

/// The policy as compared: parsed, the default read as none; text that
/// does not parse is kept as a string (so it still compares by text).
fn meaning(text: Option<&str>) -> Option<Value> {
    let text = text?;
    match parse(text) {
        Ok(doc) if is_default(&doc) => None,
        Ok(doc) => Some(doc),
        Err(_) => Some(Value::String(text.to_string())),
    }
}

/// Whether two policies (none being EC2's default) say the same.
pub fn same(a: Option<&str>, b: Option<&str>) -> bool {
    meaning(a) == meaning(b)
}

/// The policy's canonical text (compact, keys sorted), for what the
/// planner shows and sends; text that does not parse is returned as is.
pub fn canonical(text: &str) -> String {
    match parse(text) {
        Ok(doc) => doc.to_string(),
        Err(_) => text.to_string(),
    }
}
