#!/usr/bin/env bash
# Runs COMMAND with TensorFlow's start-up notices taken out of its stderr: TensorFlow writes
# them through Abseil's logging before its log settings apply, so TF_CPP_MIN_LOG_LEVEL cannot
# hide them (abseil/abseil-cpp#1957). Every other line passes, in order; the exit code is
# COMMAND's. YT8M_TFX_VERBOSE=1 (make VERBOSE=1) runs COMMAND as it is. Where GPUs were asked
# for (GPUS=all or GPUS=0,1, make's knob), the lines that say CUDA or its GPUs are missing stay:
# they are why a run would be on the CPU.
#   tools/quiet.sh COMMAND…
if [[ -n ${YT8M_TFX_VERBOSE:-} ]]; then exec "$@"; fi
STARTUP='^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$|^[IW][0-9]{4} [0-9:.]+ +[0-9]+ (port|cpu_feature_guard)\.cc:[0-9]+\]|(cuda_dnn|cuda_fft|cuda_blas)\.cc:[0-9]+\] Unable to register cu(DNN|FFT|BLAS) factory|^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.$'
readonly NO_GPU='^[IW][0-9]{4} [0-9:.]+ +[0-9]+ cudart_stub\.cc:[0-9]+\]|(cuda_platform|cuda_diagnostics)\.cc:[0-9]+\] failed call to cuInit'
NOTICES=$STARTUP
if [[ -z ${GPUS:-} || ${GPUS} == none ]]; then NOTICES+="|$NO_GPU"; fi
readonly NOTICES
{ "$@" 2>&1 1>&3 3>&- | grep --line-buffered -v -E "$NOTICES" 1>&2; } 3>&1
exit "${PIPESTATUS[0]}"
