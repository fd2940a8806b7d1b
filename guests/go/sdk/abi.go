//go:build wasm

package sous

// The canonical-ABI glue of the world sous:reconciler/reconciler@0.2.0,
// written by hand (the layouts, in layout.go, follow the Component Model's
// canonical ABI for the records of wit/reconciler.wit):
//
//   - imports: sous:reconciler/log@0.2.0#log(level, message)
//   - exports: reconcile, finalize (one flat parameter list each: the
//     `request` record is 14 core values, under the 16 of MAX_FLAT_PARAMS;
//     the result goes through a return area), cabi_post_reconcile,
//     cabi_post_finalize and cabi_realloc.
//
// Memory handed to the host (the request buffers it fills through
// cabi_realloc, the return area, every list of the answer and every string,
// lowered in place) is kept reachable in `pinned` and `pinnedStrings` until
// the post-return function, so the garbage collector (which never moves
// objects) cannot free it meanwhile.

import (
	"unsafe"
)

//go:wasmimport sous:reconciler/log@0.2.0 log
func logImport(level int32, ptr unsafe.Pointer, length int32)

func hostLog(level Level, message string) {
	if message == "" {
		logImport(int32(level), nil, 0)
		return
	}
	bytes := []byte(message)
	logImport(int32(level), unsafe.Pointer(&bytes[0]), int32(len(bytes)))
	keepAlive(bytes)
}

//go:noinline
func keepAlive(any) {}

// pinned holds every buffer shared with the host during one call, and
// pinnedStrings every string of the answer (lowered in place, not copied).
var (
	pinned        [][]byte
	pinnedStrings []string
)

// linearMemory is the component's own memory: addresses are Go pointers.
type linearMemory struct{}

func (linearMemory) alloc(size, align uint32) uint32 {
	if size == 0 {
		return align // a valid, aligned address for an empty list
	}
	buffer := make([]byte, size+align)
	pinned = append(pinned, buffer)
	address := uint32(uintptr(unsafe.Pointer(&buffer[0])))
	return (address + align - 1) &^ (align - 1)
}

func (linearMemory) store8(address uint32, value uint8) {
	*(*uint8)(unsafe.Pointer(uintptr(address))) = value
}

func (linearMemory) store32(address, value uint32) {
	*(*uint32)(unsafe.Pointer(uintptr(address))) = value
}

func (linearMemory) store64(address uint32, value uint64) {
	*(*uint64)(unsafe.Pointer(uintptr(address))) = value
}

func (linearMemory) load32(address uint32) uint32 {
	return *(*uint32)(unsafe.Pointer(uintptr(address)))
}

// stringData shares s with the host: Go strings are immutable, so the host
// reads s where it is, kept alive until the post-return function.
func (linearMemory) stringData(s string) uint32 {
	pinnedStrings = append(pinnedStrings, s)
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s))))
}

func (linearMemory) stringAt(address, length uint32) string {
	return string(bytesAt(address, length))
}

func bytesAt(address, length uint32) []byte {
	if length == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(address))), length)
}

//go:wasmexport cabi_realloc
func cabiRealloc(oldPtr, oldSize, align, newSize uint32) uint32 {
	address := linearMemory{}.alloc(newSize, align)
	if oldPtr != 0 && oldSize != 0 {
		copy(bytesAt(address, min(oldSize, newSize)), bytesAt(oldPtr, min(oldSize, newSize)))
	}
	return address
}

// reconcile returns the address of result<response, error> (96 bytes, see
// layout.go).
//
//go:wasmexport reconcile
func exportReconcile(reconcilerPtr, reconcilerLen, parentPtr, parentLen, childrenPtr, childrenLen,
	relatedPtr, relatedLen, configTag, configPtr, configLen, desiredTag, desiredPtr, desiredLen uint32) uint32 {
	return reconcileExport(linearMemory{}, flatRequest{reconcilerPtr, reconcilerLen, parentPtr, parentLen,
		childrenPtr, childrenLen, relatedPtr, relatedLen, configTag, configPtr, configLen,
		desiredTag, desiredPtr, desiredLen})
}

// finalize returns the address of result<finalize-response, error> (40
// bytes, see layout.go).
//
//go:wasmexport finalize
func exportFinalize(reconcilerPtr, reconcilerLen, parentPtr, parentLen, childrenPtr, childrenLen,
	relatedPtr, relatedLen, configTag, configPtr, configLen, desiredTag, desiredPtr, desiredLen uint32) uint32 {
	return finalizeExport(linearMemory{}, flatRequest{reconcilerPtr, reconcilerLen, parentPtr, parentLen,
		childrenPtr, childrenLen, relatedPtr, relatedLen, configTag, configPtr, configLen,
		desiredTag, desiredPtr, desiredLen})
}

// The post-return functions release everything pinned for the call: the
// request buffers, the return area, every list and string of the answer.

//go:wasmexport cabi_post_reconcile
func postReconcile(uint32) { pinned, pinnedStrings = nil, nil }

//go:wasmexport cabi_post_finalize
func postFinalize(uint32) { pinned, pinnedStrings = nil, nil }
