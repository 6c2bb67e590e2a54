#!/usr/bin/env bash
# Runs COMMAND with TensorFlow's start-up notices taken out of its stderr: TensorFlow writes
# them through Abseil's logging before its log settings apply, so TF_CPP_MIN_LOG_LEVEL cannot
# hide them (abseil/abseil-cpp#1957). Every other line passes, in order; the exit code is
# COMMAND's. YT8M_TFX_VERBOSE=1 (make VERBOSE=1) runs COMMAND as it is.
#   tools/quiet.sh COMMAND…
if [[ -n ${YT8M_TFX_VERBOSE:-} ]]; then exec "$@"; fi
readonly NOTICES='^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$|^[IW][0-9]{4} [0-9:.]+ +[0-9]+ (port|cudart_stub|cpu_feature_guard)\.cc:[0-9]+\]|(cuda_platform|cuda_diagnostics)\.cc:[0-9]+\] failed call to cuInit|(cuda_dnn|cuda_fft|cuda_blas)\.cc:[0-9]+\] Unable to register cu(DNN|FFT|BLAS) factory|^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.$'
{ "$@" 2>&1 1>&3 3>&- | grep --line-buffered -v -E "$NOTICES" 1>&2; } 3>&1
exit "${PIPESTATUS[0]}"
