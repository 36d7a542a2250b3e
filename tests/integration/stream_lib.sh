# stream_lib.sh - the paused-writer scenario shared by s3_stream.sh and
# azure_stream.sh (sourced after lib.sh).
#
# stream_writer.py writes a file through the mount by a list of OPs and may
# pause at named points (p:NAME) until the test lets it go on.  This file
# sets MNT, SIG, WRITER, SRC and ALT (two 48 MiB random files the writer
# copies from) and gives:
#   expect NAME OP...          the bytes the OPs give, in $TEST_TMP/NAME.want
#   start_writer CLOUD NAME OP...  runs the OPs on $MNT/CLOUD/NAME.bin in the
#                              background ($WRITER_PID)
#   writer_done NAME           checks that the writer exited 0 (its close
#                              succeeded)
# Each test keeps its own at_pause: what the server shows while the file is
# open differs per cloud.
MNT="$TEST_TMP/mnt"
SIG="$TEST_TMP/sig"
WRITER="$SKY_ROOT/tests/integration/stream_writer.py"
SRC="$TEST_TMP/src.bin"
ALT="$TEST_TMP/alt.bin"
MiB=$((1 << 20))
mkdir -p "$SIG"
head -c $((48 * MiB)) /dev/urandom >"$SRC"
head -c $((48 * MiB)) /dev/urandom >"$ALT"

expect() {
    local name=$1; shift
    "$PYTHON" "$WRITER" "$TEST_TMP/$name.want" "$SRC" "$ALT" - "$@"
}

start_writer() {
    local cloud=$1 name=$2; shift 2
    "$PYTHON" "$WRITER" "$MNT/$cloud/$name.bin" "$SRC" "$ALT" "$SIG" "$@" \
        >"$LOGS/writer-$name.log" 2>&1 &
    WRITER_PID=$!
}

writer_done() {
    check "$1: the writer's writes and close succeed" wait "$WRITER_PID"
}
