//! The checker, with the memory model's hints and without, against an
//! exhaustive search on thousands of small random histories: every order
//! that respects real time is tried, no memoization, no pruning.

mod common;

use std::time::Duration;

use common::*;
use tessera_checker::memory_model::{MemoryInput, MemoryModel, MemoryOutput, MemoryState};
use tessera_checker::{check, Model, Operation};

/// Whether some order of `history` is legal: every determinate operation is
/// placed, indeterminate ones may be left out, and an operation that
/// returned before another was called precedes it.
fn exhaustively_linearizable(history: &[MemoryOperation]) -> bool {
    fn must_place(op: &MemoryOperation, placed: bool) -> bool {
        !placed && op.output.is_some()
    }
    fn search(history: &[MemoryOperation], placed: &mut [bool], state: &MemoryState) -> bool {
        if !history
            .iter()
            .zip(&*placed)
            .any(|(op, &placed)| must_place(op, placed))
        {
            return true;
        }
        for (index, op) in history.iter().enumerate() {
            let waits_for_another = history.iter().zip(&*placed).any(|(before, &placed)| {
                must_place(before, placed) && before.ret.is_some_and(|ret| ret < op.call)
            });
            if placed[index] || waits_for_another {
                continue;
            }
            let nexts = match &op.output {
                Some(output) => MemoryModel
                    .step(state, &op.input, output)
                    .into_iter()
                    .collect(),
                None => MemoryModel.step_unknown(state, &op.input),
            };
            for next in nexts {
                placed[index] = true;
                let found = search(history, placed, &next);
                placed[index] = false;
                if found {
                    return true;
                }
            }
        }
        false
    }
    search(
        history,
        &mut vec![false; history.len()],
        &MemoryState::default(),
    )
}

fn small_input(rng: &mut Rng) -> MemoryInput {
    let value = |rng: &mut Rng| (rng.below(2) == 1).then(|| rng.below(2).to_string());
    match rng.below(5) {
        0 => get("k"),
        1 => set("k", &rng.below(2).to_string()),
        2 => delete("k"),
        3 => MemoryInput::Cas {
            key: "k".into(),
            expected: value(rng),
            new: value(rng),
        },
        _ => incr("k", rng.below(3) as i64 - 1),
    }
}

/// Up to six operations, some repeated, with random overlaps, their replies
/// taken from a sequential run in a random order (so often out of step with
/// real time), and sometimes one reply altered or an outcome lost.
fn random_history(rng: &mut Rng) -> Vec<MemoryOperation> {
    let len = 1 + rng.index(6);
    let mut inputs: Vec<MemoryInput> = Vec::with_capacity(len);
    for made in 0..len {
        // Repeats exercise the rule that equal indeterminate operations are
        // placed in call order.
        let input = if made > 0 && rng.percent(30) {
            inputs[rng.index(made)].clone()
        } else {
            small_input(rng)
        };
        inputs.push(input);
    }
    let mut order: Vec<usize> = (0..len).collect();
    for i in (1..len).rev() {
        order.swap(i, rng.index(i + 1));
    }
    let mut outputs = vec![None; len];
    let mut state = MemoryState::default();
    for &index in &order {
        if let Some((next, output)) = MemoryModel::apply(&state, &inputs[index]) {
            state = next;
            outputs[index] = Some(output);
        }
    }
    let mut history: Vec<MemoryOperation> = inputs
        .into_iter()
        .zip(outputs)
        .enumerate()
        .map(|(client, (input, output))| {
            let call = rng.below(8);
            let ret = call + rng.below(5);
            match output {
                Some(output) if !rng.percent(30) => {
                    Operation::completed(client as u64, input, output, call, ret)
                }
                _ => Operation::indeterminate(client as u64, input, call),
            }
        })
        .collect();
    if rng.percent(30) {
        let victim = rng.index(len);
        if let Some(MemoryOutput::Set { revision } | MemoryOutput::Incr { revision, .. }) =
            &mut history[victim].output
        {
            *revision += 1;
        }
    }
    history
}

#[test]
fn agrees_with_exhaustive_search_on_small_random_histories() {
    let mut rng = Rng::new(0x5eed);
    let mut verdicts = [0; 2];
    for case in 0..20_000 {
        let history = random_history(&mut rng);
        let expected = exhaustively_linearizable(&history);
        let budget = Duration::from_secs(10);
        let result = check(&MemoryModel, &history, budget);
        assert_eq!(
            result.is_linearizable(),
            expected,
            "case {case}: {history:#?}\n{result}"
        );
        let plain = check(&PlainMemoryModel, &history, budget);
        assert_eq!(
            plain.is_linearizable(),
            expected,
            "case {case} without hints: {history:#?}\n{plain}"
        );
        verdicts[usize::from(expected)] += 1;
    }
    // Both answers must be common, or this test proves little.
    assert!(verdicts.iter().all(|&count| count > 4_000), "{verdicts:?}");
}
