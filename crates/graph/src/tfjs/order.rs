//! The nodes some outputs need, each after the nodes it reads (a GraphDef lists them in any
//! order), and which nodes compute constants only.

use super::consts::FOLDABLE;
use super::graph_json::{NodeDef, split_ref};
use std::collections::HashMap;

/// The nodes `roots` need, inputs first. A cycle, or an input naming no node, is an error
/// naming the nodes concerned.
pub fn order(
    nodes: &[NodeDef],
    index: &HashMap<&str, usize>,
    roots: &[&str],
) -> Result<Vec<usize>, String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; nodes.len()];
    let mut out = Vec::new();
    let find = |r: &str, by: &str| -> Result<usize, String> {
        let name = split_ref(r).0;
        index
            .get(name)
            .copied()
            .ok_or_else(|| format!("node {by:?} reads {name:?}, which no node is"))
    };
    for root in roots {
        let start = find(root, "the outputs")?;
        if mark[start] == Mark::Done {
            continue;
        }
        // Depth-first with an explicit stack: (node, next input to visit).
        let mut stack = vec![(start, 0usize)];
        mark[start] = Mark::Open;
        while let Some(&mut (i, ref mut next)) = stack.last_mut() {
            let inputs: Vec<&str> = nodes[i].data_inputs().collect();
            if let Some(r) = inputs.get(*next) {
                *next += 1;
                let j = find(r, &nodes[i].name)?;
                match mark[j] {
                    Mark::Done => {}
                    Mark::Open => {
                        let from = stack.iter().position(|&(k, _)| k == j).unwrap_or(0);
                        let cycle: Vec<&str> = stack[from..]
                            .iter()
                            .map(|&(k, _)| nodes[k].name.as_str())
                            .chain([nodes[j].name.as_str()])
                            .collect();
                        return Err(format!("the graph has a cycle: {}", cycle.join(" -> ")));
                    }
                    Mark::New => {
                        mark[j] = Mark::Open;
                        stack.push((j, 0));
                    }
                }
            } else {
                mark[i] = Mark::Done;
                out.push(i);
                stack.pop();
            }
        }
    }
    Ok(out)
}

/// For each node, whether it computes a constant: a Const, or an op
/// [`super::consts::fold`] evaluates whose inputs are all constants.
pub fn constness(nodes: &[NodeDef], index: &HashMap<&str, usize>) -> Result<Vec<bool>, String> {
    let all: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let mut constant = vec![false; nodes.len()];
    for i in order(nodes, index, &all)? {
        let n = &nodes[i];
        constant[i] = n.op == "Const"
            || (FOLDABLE.contains(&n.op.as_str())
                && n.data_inputs().count() > 0
                && n.data_inputs().all(|r| constant[index[split_ref(r).0]]));
    }
    Ok(constant)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(list: &[(&str, &str, &[&str])]) -> Vec<NodeDef> {
        list.iter()
            .map(|(name, op, input)| NodeDef {
                name: name.to_string(),
                op: op.to_string(),
                input: input.iter().map(|s| s.to_string()).collect(),
                attr: Default::default(),
            })
            .collect()
    }

    fn index(n: &[NodeDef]) -> HashMap<&str, usize> {
        n.iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i))
            .collect()
    }

    #[test]
    fn inputs_come_first_whatever_the_file_order() {
        let n = nodes(&[
            ("out", "Relu", &["add"]),
            ("add", "Add", &["x", "c:0", "^x"]),
            ("c", "Const", &[]),
            ("x", "Placeholder", &[]),
            ("unused", "Relu", &["x"]),
        ]);
        let idx = index(&n);
        let order: Vec<&str> = order(&n, &idx, &["out"])
            .unwrap()
            .into_iter()
            .map(|i| n[i].name.as_str())
            .collect();
        assert_eq!(order, ["x", "c", "add", "out"]);
    }

    #[test]
    fn cycles_and_dangling_inputs_are_named() {
        let n = nodes(&[("a", "Relu", &["b"]), ("b", "Relu", &["a"])]);
        let e = order(&n, &index(&n), &["a"]).unwrap_err();
        assert!(e.contains("cycle: a -> b -> a"), "{e}");
        let n = nodes(&[("a", "Relu", &["ghost"])]);
        let e = order(&n, &index(&n), &["a"]).unwrap_err();
        assert!(e.contains("\"ghost\""), "{e}");
    }

    #[test]
    fn arithmetic_on_constants_is_constant() {
        let n = nodes(&[
            ("x", "Placeholder", &[]),
            ("a", "Const", &[]),
            ("b", "Const", &[]),
            ("sum", "AddV2", &["a", "b"]),
            ("y", "Add", &["x", "sum"]),
        ]);
        let c = constness(&n, &index(&n)).unwrap();
        assert_eq!(c, [false, true, true, true, false]);
    }
}
