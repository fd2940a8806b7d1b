;; A WASI preview 1 shim for Go reconcilers: used in place of the stock
;; wasi_snapshot_preview1 adapter by `wasm-tools component new --adapt`.
;;
;; Why not the stock adapter: its first call allocates its state through the
;; main module's `cabi_realloc`, which for Go means entering the Go runtime from
;; inside a WASI call made by the Go runtime during `_initialize`: that fails.
;; This shim keeps no state in linear memory and never calls back into Go.
;;
;; What it implements (everything Go's runtime and syscall package import):
;; - fd_write on 1 and 2: wasi:cli/stdout / stderr, blocking-write-and-flush,
;;   4096 bytes at a time; a failed or closed stream drops the output.
;; - clock_time_get: wall-clock (realtime), monotonic-clock (the others).
;; - random_get: wasi:random/random.get-random-u64.
;; - poll_oneoff: clock subscriptions sleep on monotonic-clock.subscribe-duration
;;   (the shortest one); fd subscriptions answer ENOTSUP at once.
;; - args, environment: empty. fd_read: end of file. fd_fdstat_get on 0-2: a
;;   character device. Preopens: none. proc_exit: a trap (`unreachable`), so a
;;   Go panic or os.Exit ends the call as a trap after its message on stderr.
;; - everything else (files, sockets): ENOSYS.
;;
;; Import results that do not fit in a return value (wall-clock `now`, the
;; write result) need a few bytes of linear memory. The shim owns none, so it
;; borrows 16 bytes at address $SCRATCH (16): it saves them, lets the host write
;; there, reads the answer and puts the saved bytes back before returning. The
;; host only writes there during the call; Go is single-threaded and is inside
;; this very call, so nobody observes the borrowed bytes.
(module
  (import "env" "memory" (memory 0))

  (import "wasi:cli/stdout@0.2.0" "get-stdout" (func $get_stdout (result i32)))
  (import "wasi:cli/stderr@0.2.0" "get-stderr" (func $get_stderr (result i32)))
  (import "wasi:io/streams@0.2.0" "[method]output-stream.blocking-write-and-flush"
    (func $write_and_flush (param i32 i32 i32 i32)))
  (import "wasi:io/error@0.2.0" "[resource-drop]error" (func $drop_error (param i32)))
  (import "wasi:io/poll@0.2.0" "[method]pollable.block" (func $block (param i32)))
  (import "wasi:io/poll@0.2.0" "[resource-drop]pollable" (func $drop_pollable (param i32)))
  (import "wasi:clocks/monotonic-clock@0.2.0" "now" (func $monotonic_now (result i64)))
  (import "wasi:clocks/monotonic-clock@0.2.0" "subscribe-duration"
    (func $subscribe_duration (param i64) (result i32)))
  (import "wasi:clocks/wall-clock@0.2.0" "now" (func $wall_now (param i32)))
  (import "wasi:random/random@0.2.0" "get-random-u64" (func $random_u64 (result i64)))

  ;; Stream handles, fetched on first use: -1 not yet, -2 broken (drop output).
  (global $stdout (mut i32) (i32.const -1))
  (global $stderr (mut i32) (i32.const -1))

  ;; errno values of preview 1.
  ;; 0 success, 8 badf, 28 inval, 52 nosys, 58 notsup

  ;; ---- the borrowed scratch bytes ----------------------------------------
  (global $SCRATCH i32 (i32.const 16))

  ;; ---- streams -----------------------------------------------------------

  ;; The handle of fd 1 or 2 (fetched once), -2 when broken, -3 for other fds.
  (func $stream (param $fd i32) (result i32)
    (if (i32.eq (local.get $fd) (i32.const 1))
      (then
        (if (i32.eq (global.get $stdout) (i32.const -1))
          (then (global.set $stdout (call $get_stdout))))
        (return (global.get $stdout))))
    (if (i32.eq (local.get $fd) (i32.const 2))
      (then
        (if (i32.eq (global.get $stderr) (i32.const -1))
          (then (global.set $stderr (call $get_stderr))))
        (return (global.get $stderr))))
    (i32.const -3))

  (func $mark_broken (param $fd i32)
    (if (i32.eq (local.get $fd) (i32.const 1))
      (then (global.set $stdout (i32.const -2)))
      (else (global.set $stderr (i32.const -2)))))

  ;; Writes `len` bytes at `ptr` to stream `h` (fd `fd`); returns 0 when the
  ;; stream failed (and marks it broken), 1 otherwise.
  (func $write_all (param $fd i32) (param $h i32) (param $ptr i32) (param $len i32) (result i32)
    (local $chunk i32) (local $saved0 i64) (local $saved1 i64)
    (local.set $saved0 (i64.load (global.get $SCRATCH)))
    (local.set $saved1 (i64.load offset=8 (global.get $SCRATCH)))
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (local.set $chunk
          (select (i32.const 4096) (local.get $len)
            (i32.gt_u (local.get $len) (i32.const 4096))))
        (call $write_and_flush (local.get $h) (local.get $ptr) (local.get $chunk)
          (global.get $SCRATCH))
        ;; result<_, stream-error>: tag @0; stream-error tag @4, error handle @8
        (if (i32.load8_u (global.get $SCRATCH))
          (then
            (if (i32.eqz (i32.load8_u offset=4 (global.get $SCRATCH)))
              (then (call $drop_error (i32.load offset=8 (global.get $SCRATCH)))))
            (call $mark_broken (local.get $fd))
            (i64.store (global.get $SCRATCH) (local.get $saved0))
            (i64.store offset=8 (global.get $SCRATCH) (local.get $saved1))
            (return (i32.const 0))))
        (local.set $ptr (i32.add (local.get $ptr) (local.get $chunk)))
        (local.set $len (i32.sub (local.get $len) (local.get $chunk)))
        (br $more)))
    (i64.store (global.get $SCRATCH) (local.get $saved0))
    (i64.store offset=8 (global.get $SCRATCH) (local.get $saved1))
    (i32.const 1))

  (func (export "fd_write")
    (param $fd i32) (param $iovs i32) (param $count i32) (param $nwritten i32) (result i32)
    (local $h i32) (local $i i32) (local $ptr i32) (local $len i32) (local $total i32)
    (local.set $h (call $stream (local.get $fd)))
    (if (i32.eq (local.get $h) (i32.const -3)) (then (return (i32.const 8))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $ptr (i32.load (i32.add (local.get $iovs) (i32.shl (local.get $i) (i32.const 3)))))
        (local.set $len (i32.load offset=4 (i32.add (local.get $iovs) (i32.shl (local.get $i) (i32.const 3)))))
        (if (i32.ge_s (local.get $h) (i32.const 0))
          (then
            (if (i32.eqz (call $write_all (local.get $fd) (local.get $h) (local.get $ptr) (local.get $len)))
              (then (local.set $h (i32.const -2))))))
        ;; Output to a broken stream is dropped but reported written, so that
        ;; Go does not retry forever.
        (local.set $total (i32.add (local.get $total) (local.get $len)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.store (local.get $nwritten) (local.get $total))
    (i32.const 0))

  (func (export "fd_read")
    (param $fd i32) (param $iovs i32) (param $count i32) (param $nread i32) (result i32)
    (if (i32.ne (local.get $fd) (i32.const 0)) (then (return (i32.const 8))))
    (i32.store (local.get $nread) (i32.const 0))
    (i32.const 0))

  (func (export "fd_close") (param $fd i32) (result i32)
    (if (i32.le_u (local.get $fd) (i32.const 2)) (then (return (i32.const 0))))
    (i32.const 8))

  ;; fdstat: filetype u8 @0, flags u16 @2, rights_base u64 @8, rights_inheriting u64 @16.
  (func (export "fd_fdstat_get") (param $fd i32) (param $buf i32) (result i32)
    (if (i32.gt_u (local.get $fd) (i32.const 2)) (then (return (i32.const 8))))
    (i64.store (local.get $buf) (i64.const 2)) ;; character_device, flags 0
    (i64.store offset=8 (local.get $buf) (i64.const -1))
    (i64.store offset=16 (local.get $buf) (i64.const -1))
    (i32.const 0))

  (func (export "fd_fdstat_set_flags") (param $fd i32) (param $flags i32) (result i32)
    (if (i32.gt_u (local.get $fd) (i32.const 2)) (then (return (i32.const 8))))
    (i32.const 0))

  (func (export "fd_prestat_get") (param i32 i32) (result i32) (i32.const 8))
  (func (export "fd_prestat_dir_name") (param i32 i32 i32) (result i32) (i32.const 8))

  ;; ---- arguments and environment: none ----------------------------------

  (func (export "args_sizes_get") (param $argc i32) (param $size i32) (result i32)
    (i32.store (local.get $argc) (i32.const 0))
    (i32.store (local.get $size) (i32.const 0))
    (i32.const 0))
  (func (export "args_get") (param i32 i32) (result i32) (i32.const 0))
  (func (export "environ_sizes_get") (param $count i32) (param $size i32) (result i32)
    (i32.store (local.get $count) (i32.const 0))
    (i32.store (local.get $size) (i32.const 0))
    (i32.const 0))
  (func (export "environ_get") (param i32 i32) (result i32) (i32.const 0))

  ;; ---- clocks, random, scheduling ---------------------------------------

  (func $wall_nanos (result i64)
    (local $saved0 i64) (local $saved1 i64) (local $nanos i64)
    (local.set $saved0 (i64.load (global.get $SCRATCH)))
    (local.set $saved1 (i64.load offset=8 (global.get $SCRATCH)))
    (call $wall_now (global.get $SCRATCH))
    ;; datetime: seconds u64 @0, nanoseconds u32 @8
    (local.set $nanos
      (i64.add
        (i64.mul (i64.load (global.get $SCRATCH)) (i64.const 1000000000))
        (i64.load32_u offset=8 (global.get $SCRATCH))))
    (i64.store (global.get $SCRATCH) (local.get $saved0))
    (i64.store offset=8 (global.get $SCRATCH) (local.get $saved1))
    (local.get $nanos))

  ;; clock ids: 0 realtime, 1 monotonic, 2 process cputime, 3 thread cputime.
  (func (export "clock_time_get") (param $id i32) (param $precision i64) (param $out i32) (result i32)
    (if (i32.eqz (local.get $id))
      (then
        (i64.store (local.get $out) (call $wall_nanos))
        (return (i32.const 0))))
    (if (i32.le_u (local.get $id) (i32.const 3))
      (then
        (i64.store (local.get $out) (call $monotonic_now))
        (return (i32.const 0))))
    (i32.const 28))

  (func (export "random_get") (param $buf i32) (param $len i32) (result i32)
    (local $word i64)
    (block $words_done
      (loop $words
        (br_if $words_done (i32.lt_u (local.get $len) (i32.const 8)))
        (i64.store (local.get $buf) (call $random_u64))
        (local.set $buf (i32.add (local.get $buf) (i32.const 8)))
        (local.set $len (i32.sub (local.get $len) (i32.const 8)))
        (br $words)))
    (if (i32.eqz (local.get $len)) (then (return (i32.const 0))))
    (local.set $word (call $random_u64))
    (block $bytes_done
      (loop $bytes
        (br_if $bytes_done (i32.eqz (local.get $len)))
        (i64.store8 (local.get $buf) (local.get $word))
        (local.set $word (i64.shr_u (local.get $word) (i64.const 8)))
        (local.set $buf (i32.add (local.get $buf) (i32.const 1)))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $bytes)))
    (i32.const 0))

  (func (export "sched_yield") (result i32) (i32.const 0))

  (func (export "proc_exit") (param i32) unreachable)

  ;; subscription (48 bytes): userdata u64 @0, tag u8 @8; clock: id u32 @16,
  ;; timeout u64 @24, precision u64 @32, flags u16 @40 (bit 0: absolute).
  ;; event (32 bytes): userdata u64 @0, error u16 @8, type u8 @10,
  ;; fd_readwrite nbytes u64 @16, flags u16 @24.
  (func (export "poll_oneoff")
    (param $in i32) (param $out i32) (param $count i32) (param $nevents i32) (result i32)
    (local $i i32) (local $sub i32) (local $ev i32) (local $n i32)
    (local $delay i64) (local $min i64) (local $has_fd i32) (local $has_clock i32)
    (local $now_mono i64) (local $now_wall i64) (local $p i32)
    (if (i32.eqz (local.get $count)) (then (return (i32.const 28))))
    (local.set $min (i64.const -1))
    ;; Pass 1: the shortest clock delay, and whether any fd is awaited.
    (local.set $i (i32.const 0))
    (block $end1
      (loop $each1
        (br_if $end1 (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $sub (i32.add (local.get $in) (i32.mul (local.get $i) (i32.const 48))))
        (if (i32.eqz (i32.load8_u offset=8 (local.get $sub)))
          (then
            (local.set $has_clock (i32.const 1))
            (local.set $delay (i64.load offset=24 (local.get $sub)))
            (if (i32.and (i32.load16_u offset=40 (local.get $sub)) (i32.const 1))
              (then
                ;; absolute: minus the current time of that clock
                (if (i32.eqz (i32.load offset=16 (local.get $sub)))
                  (then (local.set $now_wall (call $wall_nanos))
                        (local.set $delay (i64.sub (local.get $delay) (local.get $now_wall))))
                  (else (local.set $now_mono (call $monotonic_now))
                        (local.set $delay (i64.sub (local.get $delay) (local.get $now_mono)))))
                (if (i64.lt_s (local.get $delay) (i64.const 0))
                  (then (local.set $delay (i64.const 0))))))
            (if (i64.lt_u (local.get $delay) (local.get $min))
              (then (local.set $min (local.get $delay)))))
          (else (local.set $has_fd (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each1)))
    ;; Sleep only when nothing else can answer at once.
    (if (i32.and (local.get $has_clock) (i32.eqz (local.get $has_fd)))
      (then
        (if (i64.gt_u (local.get $min) (i64.const 0))
          (then
            (local.set $p (call $subscribe_duration (local.get $min)))
            (call $block (local.get $p))
            (call $drop_pollable (local.get $p))))))
    ;; Pass 2: events. With fds: every fd subscription fails with ENOTSUP.
    ;; Without: the clock subscriptions that were due.
    (local.set $i (i32.const 0))
    (block $end2
      (loop $each2
        (br_if $end2 (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $sub (i32.add (local.get $in) (i32.mul (local.get $i) (i32.const 48))))
        (local.set $ev (i32.add (local.get $out) (i32.mul (local.get $n) (i32.const 32))))
        (if (i32.eqz (i32.load8_u offset=8 (local.get $sub)))
          (then
            (if (i32.eqz (local.get $has_fd))
              (then
                ;; due: a relative delay no longer than the one slept, or any absolute one
                (if (i32.or
                      (i64.le_u (i64.load offset=24 (local.get $sub)) (local.get $min))
                      (i32.and (i32.load16_u offset=40 (local.get $sub)) (i32.const 1)))
                  (then
                    (i64.store (local.get $ev) (i64.load (local.get $sub)))
                    (i64.store offset=8 (local.get $ev) (i64.const 0))
                    (i64.store offset=16 (local.get $ev) (i64.const 0))
                    (i64.store offset=24 (local.get $ev) (i64.const 0))
                    (local.set $n (i32.add (local.get $n) (i32.const 1))))))))
          (else
            (i64.store (local.get $ev) (i64.load (local.get $sub)))
            (i64.store offset=8 (local.get $ev) (i64.const 0))
            (i32.store16 offset=8 (local.get $ev) (i32.const 58))
            (i32.store8 offset=10 (local.get $ev) (i32.load8_u offset=8 (local.get $sub)))
            (i64.store offset=16 (local.get $ev) (i64.const 0))
            (i64.store offset=24 (local.get $ev) (i64.const 0))
            (local.set $n (i32.add (local.get $n) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each2)))
    (i32.store (local.get $nevents) (local.get $n))
    (i32.const 0))

  ;; ---- no files, no sockets ---------------------------------------------
  (func (export "fd_fdstat_set_rights") (param i32 i64 i64) (result i32) (i32.const 52))
  (func (export "fd_filestat_get") (param i32 i32) (result i32) (i32.const 52))
  (func (export "fd_filestat_set_size") (param i32 i64) (result i32) (i32.const 52))
  (func (export "fd_pread") (param i32 i32 i32 i64 i32) (result i32) (i32.const 52))
  (func (export "fd_pwrite") (param i32 i32 i32 i64 i32) (result i32) (i32.const 52))
  (func (export "fd_readdir") (param i32 i32 i32 i64 i32) (result i32) (i32.const 52))
  (func (export "fd_seek") (param i32 i64 i32 i32) (result i32) (i32.const 52))
  (func (export "fd_sync") (param i32) (result i32) (i32.const 52))
  (func (export "path_create_directory") (param i32 i32 i32) (result i32) (i32.const 52))
  (func (export "path_filestat_get") (param i32 i32 i32 i32 i32) (result i32) (i32.const 52))
  (func (export "path_filestat_set_times") (param i32 i32 i32 i32 i64 i64 i32) (result i32) (i32.const 52))
  (func (export "path_link") (param i32 i32 i32 i32 i32 i32 i32) (result i32) (i32.const 52))
  (func (export "path_open") (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32) (i32.const 52))
  (func (export "path_readlink") (param i32 i32 i32 i32 i32 i32) (result i32) (i32.const 52))
  (func (export "path_remove_directory") (param i32 i32 i32) (result i32) (i32.const 52))
  (func (export "path_rename") (param i32 i32 i32 i32 i32 i32) (result i32) (i32.const 52))
  (func (export "path_symlink") (param i32 i32 i32 i32 i32) (result i32) (i32.const 52))
  (func (export "path_unlink_file") (param i32 i32 i32) (result i32) (i32.const 52))
  (func (export "sock_accept") (param i32 i32 i32) (result i32) (i32.const 52))
  (func (export "sock_shutdown") (param i32 i32) (result i32) (i32.const 52))
)
