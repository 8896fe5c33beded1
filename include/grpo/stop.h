// Stopping a run cleanly. A stop request is a flag that the trainers
// (GRPOTrainer, SFTTrainer and Distiller), the pipeline and rejection sampling
// read between steps: they finish the step under way, write a checkpoint and
// return, and a later run with checkpoint.resume continues from there.
// install_stop_signals() (what the `grpo` command line calls) makes the first
// SIGINT, SIGTERM or SIGHUP such a request, and a second one end the process at
// once (the signal's default action). Torch-free; safe to call from any thread
// and, for request_stop, from a signal handler.
#pragma once

namespace grpo {

// Asks the running trainer to stop after its current step. `signal` is the
// signal that asked (0: asked by code), reported by stop_signal().
void request_stop(int signal = 0) noexcept;
// Whether a stop has been asked for (and not cleared since).
bool stop_requested() noexcept;
// The signal that asked for the stop, or 0.
int stop_signal() noexcept;
// Forgets the request (a program that goes on to train again).
void clear_stop_request() noexcept;
// Handlers for SIGINT, SIGTERM and SIGHUP: the first asks for a stop and says
// so on stderr, a second ends the process with that signal's default action.
void install_stop_signals();

}  // namespace grpo
