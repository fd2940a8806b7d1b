//go:build wasm

package sous

// The canonical-ABI glue of the world sous:reconciler/reconciler, written by
// hand (the layouts follow the Component Model's canonical ABI for the
// records of wit/reconciler.wit):
//
//   - imports: sous:reconciler/log@0.1.0#log(level, message)
//   - exports: reconcile, finalize (one flat parameter list each: the
//     `request` record is 11 core values), cabi_post_reconcile,
//     cabi_post_finalize and cabi_realloc.
//
// Memory handed to the host (the request buffers it fills through
// cabi_realloc, the return area and every string of the answer) is kept
// reachable in `pinned` until the post-return function, so the garbage
// collector (which never moves objects) cannot free it meanwhile.

import (
	"unsafe"
)

//go:wasmimport sous:reconciler/log@0.1.0 log
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

// alloc returns the address of size fresh zeroed bytes aligned to align,
// pinned until the post-return function.
func alloc(size, align uint32) uint32 {
	if size == 0 {
		return align // a valid, aligned address for an empty list
	}
	buffer := make([]byte, size+align)
	pinned = append(pinned, buffer)
	address := uint32(uintptr(unsafe.Pointer(&buffer[0])))
	return (address + align - 1) &^ (align - 1)
}

//go:wasmexport cabi_realloc
func cabiRealloc(oldPtr, oldSize, align, newSize uint32) uint32 {
	address := alloc(newSize, align)
	if oldPtr != 0 && oldSize != 0 {
		copy(bytesAt(address, min(oldSize, newSize)), bytesAt(oldPtr, min(oldSize, newSize)))
	}
	return address
}

func bytesAt(address, length uint32) []byte {
	if length == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(address))), length)
}

// stringAt copies a string out of host-written memory.
func stringAt(address, length uint32) string {
	return string(bytesAt(address, length))
}

func load32(address uint32) uint32 {
	return *(*uint32)(unsafe.Pointer(uintptr(address)))
}

func store8(address uint32, value uint8) {
	*(*uint8)(unsafe.Pointer(uintptr(address))) = value
}

func store32(address, value uint32) {
	*(*uint32)(unsafe.Pointer(uintptr(address))) = value
}

func store64(address uint32, value uint64) {
	*(*uint64)(unsafe.Pointer(uintptr(address))) = value
}

// stringList reads a list<string>: (ptr, len) pairs of 8 bytes.
func stringList(address, count uint32) []string {
	list := make([]string, count)
	for i := range count {
		element := address + 8*i
		list[i] = stringAt(load32(element), load32(element+4))
	}
	return list
}

// lowerString stores (ptr, len) of s at address. Go strings are immutable,
// so the host reads s where it is, kept alive until the post-return function.
func lowerString(address uint32, s string) {
	pointer := uint32(1) // any address will do for an empty string
	if len(s) > 0 {
		pinnedStrings = append(pinnedStrings, s)
		pointer = uint32(uintptr(unsafe.Pointer(unsafe.StringData(s))))
	}
	store32(address, pointer)
	store32(address+4, uint32(len(s)))
}

func liftRequest(reconcilerPtr, reconcilerLen, parentPtr, parentLen, childrenPtr, childrenLen,
	relatedPtr, relatedLen, configTag, configPtr, configLen uint32) (*Request, *Error) {
	var config *string
	if configTag != 0 {
		text := stringAt(configPtr, configLen)
		config = &text
	}
	return ParseRequest(
		stringAt(reconcilerPtr, reconcilerLen),
		stringAt(parentPtr, parentLen),
		stringList(childrenPtr, childrenLen),
		stringList(relatedPtr, relatedLen),
		config,
	)
}

// lowerError writes the `error` variant at address: tag u8 @0, string @4.
func lowerError(address uint32, err *Error) {
	tag := uint8(0) // invalid
	if err.Transient {
		tag = 1
	}
	store8(address, tag)
	lowerString(address+4, err.Message)
}

// lowerEvents writes a list<event> (20 bytes each: type u8 @0, reason @4,
// message @12) and its (ptr, len) at address.
func lowerEvents(address uint32, events []Event) {
	list := alloc(uint32(20*len(events)), 4)
	for i, event := range events {
		element := list + uint32(20*i)
		if event.Warning {
			store8(element, 1)
		}
		lowerString(element+4, event.Reason)
		lowerString(element+12, event.Message)
	}
	store32(address, list)
	store32(address+4, uint32(len(events)))
}

// lowerOptionU64 writes option<u64> at address: tag u8 @0, value @8.
func lowerOptionU64(address uint32, value *uint64) {
	if value != nil {
		store8(address, 1)
		store64(address+8, *value)
	}
}

// result<response, error>, 56 bytes aligned to 8: tag @0, payload @8.
// response: children @8 (ptr, len), status option<string> @16 (tag, ptr @20,
// len @24), requeue-after-ms option<u64> @32, events @48.
//
//go:wasmexport reconcile
func exportReconcile(reconcilerPtr, reconcilerLen, parentPtr, parentLen, childrenPtr, childrenLen,
	relatedPtr, relatedLen, configTag, configPtr, configLen uint32) uint32 {
	request, err := liftRequest(reconcilerPtr, reconcilerLen, parentPtr, parentLen,
		childrenPtr, childrenLen, relatedPtr, relatedLen, configTag, configPtr, configLen)
	var wire Wire
	if err == nil {
		if registered == nil {
			err = Transient("no reconciler registered: call sous.Register from an init function")
		} else {
			var response *Response
			if response, err = RunReconcile(registered, request); err == nil {
				wire, err = response.Wire()
			}
		}
	}
	result := alloc(56, 8)
	if err != nil {
		store8(result, 1)
		lowerError(result+8, err)
		return result
	}
	children := alloc(uint32(8*len(wire.Children)), 4)
	for i, child := range wire.Children {
		lowerString(children+uint32(8*i), child)
	}
	store32(result+8, children)
	store32(result+12, uint32(len(wire.Children)))
	if wire.Status != nil {
		store8(result+16, 1)
		lowerString(result+20, *wire.Status)
	}
	lowerOptionU64(result+32, wire.RequeueAfterMs)
	lowerEvents(result+48, wire.Events)
	return result
}

// result<finalize-response, error>, 40 bytes aligned to 8: tag @0, payload
// @8. finalize-response: done @8, requeue-after-ms option<u64> @16, events @32.
//
//go:wasmexport finalize
func exportFinalize(reconcilerPtr, reconcilerLen, parentPtr, parentLen, childrenPtr, childrenLen,
	relatedPtr, relatedLen, configTag, configPtr, configLen uint32) uint32 {
	request, err := liftRequest(reconcilerPtr, reconcilerLen, parentPtr, parentLen,
		childrenPtr, childrenLen, relatedPtr, relatedLen, configTag, configPtr, configLen)
	var response *FinalizeResponse
	if err == nil {
		if registered == nil {
			err = Transient("no reconciler registered: call sous.Register from an init function")
		} else {
			response, err = RunFinalize(registered, request)
		}
	}
	result := alloc(40, 8)
	if err != nil {
		store8(result, 1)
		lowerError(result+8, err)
		return result
	}
	wire := response.Wire()
	if wire.Done {
		store8(result+8, 1)
	}
	lowerOptionU64(result+16, wire.RequeueAfterMs)
	lowerEvents(result+32, wire.Events)
	return result
}

//go:wasmexport cabi_post_reconcile
func postReconcile(uint32) { pinned, pinnedStrings = nil, nil }

//go:wasmexport cabi_post_finalize
func postFinalize(uint32) { pinned, pinnedStrings = nil, nil }
