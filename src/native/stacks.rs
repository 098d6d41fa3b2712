//! Native frames in sampled stacks (`record --native`, `top --native`): each sample's
//! thread is unwound while the target is paused, and its Python frames are put where
//! the eval loop runs them.

use std::time::{Duration, Instant};

use super::merge::{merge, MergedFrame};
use super::module::Module;
use super::unwind::Unwinder;
use crate::python::PythonProcess;
use crate::sampler::{Sample, SamplerEvent, StackReader};
use crate::symbolize::{Frame, FrameId};
use crate::target::maps::{read_maps, FileRoot};
use crate::target::pause::PausedThreads;

/// Least time between two loads of the process's modules.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Unwinds the native stacks of one process's samples.
pub struct NativeStacks {
    unwinder: Unwinder,
    /// When the modules were loaded: a frame in none of them (a library loaded since,
    /// or code made at run time) has them loaded again, at most every
    /// [`RELOAD_INTERVAL`].
    loaded_at: Instant,
}

impl NativeStacks {
    /// Load the modules of `process`.
    pub fn new(process: &PythonProcess) -> NativeStacks {
        NativeStacks {
            unwinder: Unwinder::new(load(process)),
            loaded_at: Instant::now(),
        }
    }

    /// Give the samples in `events[from..]`, read while `paused`, their native frames,
    /// announcing those new with an event before the sample. A sample whose native stack
    /// cannot be had or matched keeps its Python frames alone.
    pub fn add(
        &mut self,
        process: &PythonProcess,
        reader: &mut StackReader,
        paused: &PausedThreads<'_>,
        events: &mut Vec<SamplerEvent>,
        from: usize,
    ) {
        let tick: Vec<SamplerEvent> = events.drain(from.min(events.len())..).collect();
        let mut new_frames = Vec::new();
        for event in tick {
            let SamplerEvent::Sample(mut sample) = event else {
                events.push(event);
                continue;
            };
            if let Some(frames) = self.merged(process, reader, paused, &sample, &mut new_frames) {
                sample.frames = frames;
            }
            events.extend(SamplerEvent::announcing(process.pid, new_frames.drain(..)));
            events.push(SamplerEvent::Sample(sample));
        }
    }

    /// `sample`'s frames with its thread's native ones, innermost first.
    fn merged(
        &mut self,
        process: &PythonProcess,
        reader: &mut StackReader,
        paused: &PausedThreads<'_>,
        sample: &Sample,
        new_frames: &mut Vec<(FrameId, Frame)>,
    ) -> Option<Vec<FrameId>> {
        let registers = paused.registers(sample.thread.os_id?)?;
        let raw = reader.last_stack(sample.thread_state)?;
        if raw.len() != sample.frames.len() {
            return None;
        }
        let python: Vec<_> = sample
            .frames
            .iter()
            .copied()
            .zip(raw.iter().map(|r| r.eval_call))
            .collect();
        let mut native = self.unwinder.unwind(&process.memory, registers);
        if native.iter().any(|frame| frame.module.is_none())
            && self.loaded_at.elapsed() >= RELOAD_INTERVAL
        {
            self.unwinder = Unwinder::new(load(process));
            self.loaded_at = Instant::now();
            native = self.unwinder.unwind(&process.memory, registers);
        }
        let merged = merge(native, python, process.eval_function).ok()?;
        let ids = merged.into_iter().map(|frame| match frame {
            MergedFrame::Python(id) => id,
            MergedFrame::Native(frame) => reader.native_frame_id(&frame, new_frames),
        });
        Some(ids.collect())
    }
}

/// The executable files mapped into `process`, and its vDSO.
pub fn load(process: &PythonProcess) -> Vec<Module> {
    let maps = read_maps(process.pid).unwrap_or_default();
    Module::load_all(FileRoot::Process(process.pid), &maps, &process.memory)
}
