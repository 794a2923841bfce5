//! The translated values: a TensorFlow tensor is either a constant (kept here, written as an
//! initializer only where a node reads it) or an ONNX value with its TensorFlow shape and the
//! layout it is stored in ([`super::layout`]).

use std::collections::HashMap;
use std::rc::Rc;

use super::consts::Const;
use super::layout::{IDENTITY, Perm, between};
use crate::proto::{Attr, FLOAT, GraphBuilder, INT64};

#[derive(Clone)]
pub enum Val {
    /// A constant and the TensorFlow name it came from (its initializer's name).
    Const(Rc<Const>, String),
    Dyn(Dyn),
}

#[derive(Clone)]
pub struct Dyn {
    pub name: String,
    /// The TensorFlow shape (before `perm`).
    pub shape: Vec<usize>,
    /// How the ONNX value is stored: `transpose(tensorflow, perm)`; identity below rank 4.
    pub perm: Perm,
    pub int: bool,
}

impl Val {
    pub fn shape(&self) -> &[usize] {
        match self {
            Val::Const(c, _) => &c.shape,
            Val::Dyn(d) => &d.shape,
        }
    }

    pub fn int(&self) -> bool {
        match self {
            Val::Const(c, _) => c.int,
            Val::Dyn(d) => d.int,
        }
    }

    pub fn as_const(&self) -> Option<&Const> {
        match self {
            Val::Const(c, _) => Some(c),
            Val::Dyn(_) => None,
        }
    }

    /// The layout it is stored in (constants: TensorFlow's until written).
    pub fn perm(&self) -> Perm {
        match self {
            Val::Const(..) => IDENTITY,
            Val::Dyn(d) => d.perm,
        }
    }

    pub fn elem(&self) -> i32 {
        if self.int() { INT64 } else { FLOAT }
    }
}

/// The graph under construction and the values already written in another layout.
pub struct Tx {
    pub b: GraphBuilder,
    /// `(stored value, transpose)` → the ONNX value holding it so transposed.
    written: HashMap<(String, Perm), String>,
}

impl Tx {
    pub fn new(b: GraphBuilder) -> Self {
        Self {
            b,
            written: HashMap::new(),
        }
    }

    /// The ONNX value holding `v` stored as `want` (for a rank-4 value; others are stored as
    /// TensorFlow has them and `want` must be the identity).
    pub fn stored(&mut self, v: &Val, want: Perm) -> Result<String, String> {
        let rank = v.shape().len();
        if rank != 4 && want != IDENTITY {
            return Err(format!("a rank-{rank} tensor cannot take an image layout"));
        }
        // A value is known by its stored tensor and the transpose applied to it (a TensorFlow
        // Transpose gives another value stored in the same tensor).
        let key = match v {
            Val::Const(_, name) => (format!("const:{name}"), want),
            Val::Dyn(d) => (d.name.clone(), between(d.perm, want)),
        };
        if let Some(name) = self.written.get(&key) {
            return Ok(name.clone());
        }
        let name = match v {
            Val::Const(c, name) => {
                let c = if want == IDENTITY {
                    (**c).clone()
                } else {
                    c.permuted(want)
                        .ok_or_else(|| format!("constant {name} has rank above 4"))?
                };
                self.write_const(name, &c)?
            }
            Val::Dyn(d) => {
                let t = between(d.perm, want);
                if t == IDENTITY {
                    return Ok(d.name.clone());
                }
                self.b.node(
                    "Transpose",
                    &format!("{}/transpose", d.name),
                    &[&d.name],
                    vec![("perm", Attr::Ints(t.iter().map(|&a| a as i64).collect()))],
                )
            }
        };
        self.written.insert(key, name.clone());
        Ok(name)
    }

    /// `v` in TensorFlow's layout.
    pub fn tf(&mut self, v: &Val) -> Result<String, String> {
        self.stored(v, IDENTITY)
    }

    /// An initializer holding `c` as it is.
    pub fn write_const(&mut self, name: &str, c: &Const) -> Result<String, String> {
        let written = if c.int {
            self.b.int64_const(name, &c.shape, &c.ints())
        } else {
            self.b.float_const(name, &c.shape, &c.data)
        };
        written.map_err(|e| e.to_string())
    }

    /// A new value: the one output of a node already written.
    pub fn out(name: String, shape: Vec<usize>, perm: Perm, int: bool) -> Val {
        let perm = if shape.len() == 4 { perm } else { IDENTITY };
        Val::Dyn(Dyn {
            name,
            shape,
            perm,
            int,
        })
    }
}
