//! Putting a thread's Python frames in its native stack, where the interpreter runs
//! them: each native call of the eval loop stands for the Python frames it runs.

use super::unwind::NativeFrame;
use crate::python::frames::EvalCall;

/// One frame of a merged stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergedFrame<P> {
    /// A Python frame.
    Python(P),
    /// A native frame that is not the eval loop.
    Native(NativeFrame),
}

/// The native stack and the Python one do not go together: the thread moved between
/// their reads, or the eval loop is not known by that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{eval_calls} native calls of the eval loop for {python_calls} Python runs of frames")]
pub struct Mismatch {
    /// Native frames in the eval function.
    pub eval_calls: usize,
    /// Runs of Python frames, each ending with an entry frame.
    pub python_calls: usize,
}

/// Merge `native` (innermost first) with `python`, the same thread's Python frames
/// (innermost first) each with where it stands in its eval-loop call. Each native
/// call of the eval loop is replaced by its run of Python frames. A native frame is
/// such a call when its function is `eval_function` (or a part of it, such as
/// `NAME.cold`), or when a run's shim frame (3.12+) lies in its stack frame: that
/// finds the calls in stripped binaries, whose split-off parts have no symbol.
pub fn merge<P>(
    native: Vec<NativeFrame>,
    python: Vec<(P, EvalCall)>,
    eval_function: &str,
) -> Result<Vec<MergedFrame<P>>, Mismatch> {
    let mut is_eval: Vec<bool> = native
        .iter()
        .map(|frame| {
            !frame.inlined
                && frame.function.as_deref().is_some_and(|name| {
                    name.strip_prefix(eval_function)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
                })
        })
        .collect();
    // Runs of Python frames, each closed by its outermost frame.
    let mut runs: Vec<Vec<P>> = Vec::new();
    let mut run = Vec::new();
    for (frame, eval_call) in python {
        run.push(frame);
        if let EvalCall::AboveShim(shim) = eval_call {
            // A frame's locals lie between its stack pointer and its caller's.
            let holder = native.iter().enumerate().position(|(index, frame)| {
                let caller = native.get(index + 1).map_or(u64::MAX, |c| c.stack_pointer);
                (frame.stack_pointer..caller).contains(&shim)
            });
            if let Some(index) = holder {
                is_eval[index] = true;
            }
        }
        if eval_call != EvalCall::Within {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    let eval_calls = is_eval.iter().filter(|&&eval| eval).count();
    if eval_calls != runs.len() {
        return Err(Mismatch {
            eval_calls,
            python_calls: runs.len(),
        });
    }
    let mut runs = runs.into_iter();
    let mut merged = Vec::new();
    for (frame, eval) in native.into_iter().zip(is_eval) {
        match eval {
            true => merged.extend(runs.next().into_iter().flatten().map(MergedFrame::Python)),
            false => merged.push(MergedFrame::Native(frame)),
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn native(function: &str) -> NativeFrame {
        NativeFrame {
            address: 0x1000,
            function: Some(function.to_string()),
            module: Some("libpython3.11.so".to_string()),
            source: None,
            inlined: false,
            stack_pointer: 0,
        }
    }

    /// Frames named `functions`, innermost first, whose stack frames are 0x100 bytes
    /// each from 0x1000 up.
    fn stack(functions: &[&str]) -> Vec<NativeFrame> {
        let mut frames: Vec<NativeFrame> = functions.iter().map(|f| native(f)).collect();
        for (index, frame) in frames.iter_mut().enumerate() {
            frame.stack_pointer = 0x1000 + 0x100 * index as u64;
        }
        frames
    }

    fn names(merged: &[MergedFrame<&str>]) -> Vec<String> {
        merged
            .iter()
            .map(|frame| match frame {
                MergedFrame::Python(name) => format!("py:{name}"),
                MergedFrame::Native(frame) => frame.function.clone().unwrap(),
            })
            .collect()
    }

    #[test]
    fn each_eval_call_becomes_its_run_of_python_frames() {
        let stack = vec![
            native("clock_nanosleep"),
            native("time_sleep"),
            native("_PyEval_EvalFrameDefault"),
            native("PyObject_Call"),
            native("_PyEval_EvalFrameDefault.cold"),
            native("main"),
        ];
        let python = vec![
            ("inner", EvalCall::Within),
            ("outer", EvalCall::Outermost),
            ("<module>", EvalCall::Outermost),
        ];
        let merged = merge(stack, python, "_PyEval_EvalFrameDefault").unwrap();
        assert_eq!(
            names(&merged),
            [
                "clock_nanosleep",
                "time_sleep",
                "py:inner",
                "py:outer",
                "PyObject_Call",
                "py:<module>",
                "main"
            ]
        );
    }

    #[test]
    fn code_inlined_into_the_eval_loop_stays_inside_its_python_frames() {
        let mut stack = vec![
            native("Py_DECREF"),
            native("_PyEval_EvalFrameDefault"),
            native("main"),
        ];
        stack[0].inlined = true;
        let python = vec![("inner", EvalCall::Outermost)];
        let merged = merge(stack, python, "_PyEval_EvalFrameDefault").unwrap();
        assert_eq!(names(&merged), ["Py_DECREF", "py:inner", "main"]);
    }

    #[test]
    fn counts_that_differ_are_a_mismatch() {
        let stack = vec![native("_PyEval_EvalFrameDefault"), native("main")];
        let python = vec![
            ("inner", EvalCall::Outermost),
            ("<module>", EvalCall::Outermost),
        ];
        assert_eq!(
            merge(stack, python, "_PyEval_EvalFrameDefault"),
            Err(Mismatch {
                eval_calls: 1,
                python_calls: 2
            })
        );
    }

    #[test]
    fn a_similar_name_is_not_the_eval_loop() {
        let stack = vec![native("_PyEval_EvalFrameDefaultX"), native("main")];
        let merged = merge(
            stack,
            Vec::<(&str, EvalCall)>::new(),
            "_PyEval_EvalFrameDefault",
        );
        assert_eq!(merged.unwrap().len(), 2);
    }

    #[test]
    fn a_shim_finds_an_eval_call_that_has_no_symbol() {
        let mut native = stack(&["clock_nanosleep", "?", "?", "PyEval_EvalCode"]);
        for frame in &mut native[1..3] {
            frame.function = None;
        }
        // The shim is a local of the third frame, which runs from 0x1200 to 0x1300.
        let python = vec![
            ("inner", EvalCall::Within),
            ("<module>", EvalCall::AboveShim(0x1280)),
        ];
        let merged = merge(native, python, "_PyEval_EvalFrameDefault").unwrap();
        let shown: Vec<String> = merged
            .iter()
            .map(|frame| match frame {
                MergedFrame::Python(name) => format!("py:{name}"),
                MergedFrame::Native(frame) => frame.function.clone().unwrap_or("?".into()),
            })
            .collect();
        assert_eq!(
            shown,
            [
                "clock_nanosleep",
                "?",
                "py:inner",
                "py:<module>",
                "PyEval_EvalCode"
            ]
        );
    }
}
