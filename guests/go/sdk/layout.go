package sous

// The canonical-ABI layouts of sous:reconciler@0.2.0 (wit/reconciler.wit),
// and the lifting of the request and the lowering of the results through a
// [memory]: the component's linear memory in abi.go (wasm), a byte slice in
// the native tests, which check these offsets against a layout computed from
// the canonical ABI's rules.
//
// Sizes and alignments (canonical ABI, 32-bit memory): string and list<T> are
// (ptr, len), 8 bytes aligned to 4; option<T> is a u8 discriminant padded to
// T's alignment, then T; a record's fields follow each other, each aligned to
// its own alignment, and the record's size is rounded up to its largest
// alignment.
const (
	// option<string>: tag u8 @0, string @4. 12 bytes, align 4.
	optionStringSize = 12
	// option<u64>: tag u8 @0, u64 @8. 16 bytes, align 8.
	optionU64Value = 8

	// event: event-type u8 @0, reason @4, message @12. 20 bytes, align 4.
	eventSize    = 20
	eventReason  = 4
	eventMessage = 12

	// key-value = tuple<string, string>: key @0, value @8. 16 bytes, align 4.
	keyValueSize  = 16
	keyValueValue = 8

	// related-request: api-version @0, kind @8, namespace option<string> @16,
	// name option<string> @28, selector option<string> @40. 52 bytes, align 4.
	relatedRequestSize        = 52
	relatedRequestKind        = 8
	relatedRequestNamespace   = 16
	relatedRequestName        = 28
	relatedRequestSelector    = 40
	relatedRequestAlignment   = 4
	listAlignment             = 4
	resultAlignment           = 8
	resultPayload             = 8 // result<T, error>: tag u8 @0, payload @8 (T aligned to 8)
	errorMessage              = 4 // error variant: tag u8 @0, string @4
	optionListKeyValueSize    = 12
	optionListKeyValueList    = 4 // option<list<key-value>>: tag u8 @0, list @4
	responseChildren          = 0
	responseStatus            = 8  // option<string>, 12 bytes
	responseRequeueAfterMs    = 24 // option<u64>, 16 bytes, aligned to 8
	responseEvents            = 40 // list<event>
	responseParentLabels      = 48 // option<list<key-value>>, 12 bytes
	responseParentAnnotations = 60 // option<list<key-value>>, 12 bytes
	responsePatches           = 72 // list<object>
	responseRelatedRequests   = 80 // list<related-request>
	responseSize              = 88 // align 8 (requeue-after-ms)

	// finalize-response: done bool @0, requeue-after-ms @8, events @24. 32
	// bytes, align 8.
	finalizeDone           = 0
	finalizeRequeueAfterMs = 8
	finalizeEvents         = 24
	finalizeResponseSize   = 32

	// result<response, error>: 8 + 88 = 96 bytes; result<finalize-response,
	// error>: 8 + 32 = 40 bytes; both aligned to 8.
	reconcileResultSize = resultPayload + responseSize
	finalizeResultSize  = resultPayload + finalizeResponseSize
)

// memory is where values cross the boundary: the component's linear memory,
// or a byte slice in the native tests. Addresses are 32-bit.
type memory interface {
	// alloc returns size fresh zeroed bytes aligned to align, kept alive
	// until the post-return function.
	alloc(size, align uint32) uint32
	store8(address uint32, value uint8)
	store32(address, value uint32)
	store64(address uint32, value uint64)
	load32(address uint32) uint32
	// stringData is the address of the bytes of a non-empty s, kept alive
	// until the post-return function.
	stringData(s string) uint32
	// stringAt copies length bytes at address into a Go string.
	stringAt(address, length uint32) string
}

// lowerString stores (ptr, len) of s at address.
func lowerString(m memory, address uint32, s string) {
	pointer := uint32(1) // any address will do for an empty string
	if len(s) > 0 {
		pointer = m.stringData(s)
	}
	m.store32(address, pointer)
	m.store32(address+4, uint32(len(s)))
}

// lowerOptionString stores option<string> at address: none for "".
func lowerOptionString(m memory, address uint32, s string) {
	if s != "" {
		m.store8(address, 1)
		lowerString(m, address+4, s)
	}
}

// lowerStrings writes a list<string> and stores its (ptr, len) at address.
func lowerStrings(m memory, address uint32, texts []string) {
	list := m.alloc(uint32(8*len(texts)), listAlignment)
	for i, text := range texts {
		lowerString(m, list+uint32(8*i), text)
	}
	m.store32(address, list)
	m.store32(address+4, uint32(len(texts)))
}

// lowerEvents writes a list<event> and stores its (ptr, len) at address.
func lowerEvents(m memory, address uint32, events []Event) {
	list := m.alloc(uint32(eventSize*len(events)), listAlignment)
	for i, event := range events {
		element := list + uint32(eventSize*i)
		if event.Warning {
			m.store8(element, 1)
		}
		lowerString(m, element+eventReason, event.Reason)
		lowerString(m, element+eventMessage, event.Message)
	}
	m.store32(address, list)
	m.store32(address+4, uint32(len(events)))
}

// lowerKeyValues writes option<list<key-value>> at address: none for nil.
func lowerKeyValues(m memory, address uint32, entries []KeyValue) {
	if entries == nil {
		return
	}
	m.store8(address, 1)
	list := m.alloc(uint32(keyValueSize*len(entries)), listAlignment)
	for i, entry := range entries {
		element := list + uint32(keyValueSize*i)
		lowerString(m, element, entry.Key)
		lowerString(m, element+keyValueValue, entry.Value)
	}
	m.store32(address+optionListKeyValueList, list)
	m.store32(address+optionListKeyValueList+4, uint32(len(entries)))
}

// lowerRelatedRequests writes a list<related-request> and stores its (ptr,
// len) at address.
func lowerRelatedRequests(m memory, address uint32, requests []RelatedRequest) {
	list := m.alloc(uint32(relatedRequestSize*len(requests)), relatedRequestAlignment)
	for i, request := range requests {
		element := list + uint32(relatedRequestSize*i)
		lowerString(m, element, request.APIVersion)
		lowerString(m, element+relatedRequestKind, request.Kind)
		lowerOptionString(m, element+relatedRequestNamespace, request.Namespace)
		lowerOptionString(m, element+relatedRequestName, request.Name)
		lowerOptionString(m, element+relatedRequestSelector, request.Selector)
	}
	m.store32(address, list)
	m.store32(address+4, uint32(len(requests)))
}

// lowerOptionU64 writes option<u64> at address.
func lowerOptionU64(m memory, address uint32, value *uint64) {
	if value != nil {
		m.store8(address, 1)
		m.store64(address+optionU64Value, *value)
	}
}

// lowerError writes result::err(error) at result.
func lowerError(m memory, result uint32, err *Error) {
	m.store8(result, 1)
	tag := uint8(0) // invalid
	if err.Transient {
		tag = 1
	}
	m.store8(result+resultPayload, tag)
	lowerString(m, result+resultPayload+errorMessage, err.Message)
}

// lowerReconcileResult writes result<response, error> into a fresh return
// area and returns its address.
func lowerReconcileResult(m memory, wire Wire, err *Error) uint32 {
	result := m.alloc(reconcileResultSize, resultAlignment)
	if err != nil {
		lowerError(m, result, err)
		return result
	}
	response := result + resultPayload
	lowerStrings(m, response+responseChildren, wire.Children)
	if wire.Status != nil {
		m.store8(response+responseStatus, 1)
		lowerString(m, response+responseStatus+4, *wire.Status)
	}
	lowerOptionU64(m, response+responseRequeueAfterMs, wire.RequeueAfterMs)
	lowerEvents(m, response+responseEvents, wire.Events)
	lowerKeyValues(m, response+responseParentLabels, wire.ParentLabels)
	lowerKeyValues(m, response+responseParentAnnotations, wire.ParentAnnotations)
	lowerStrings(m, response+responsePatches, wire.Patches)
	lowerRelatedRequests(m, response+responseRelatedRequests, wire.RelatedRequests)
	return result
}

// lowerFinalizeResult writes result<finalize-response, error> into a fresh
// return area and returns its address.
func lowerFinalizeResult(m memory, wire Wire, err *Error) uint32 {
	result := m.alloc(finalizeResultSize, resultAlignment)
	if err != nil {
		lowerError(m, result, err)
		return result
	}
	response := result + resultPayload
	if wire.Done {
		m.store8(response+finalizeDone, 1)
	}
	lowerOptionU64(m, response+finalizeRequeueAfterMs, wire.RequeueAfterMs)
	lowerEvents(m, response+finalizeEvents, wire.Events)
	return result
}

// flatRequest is the request record flattened into its 14 core parameters
// (each string and list a (ptr, len) pair, each option<string> a (tag, ptr,
// len) triple), in the order of the record's fields.
type flatRequest struct {
	reconcilerPtr, reconcilerLen uint32
	parentPtr, parentLen         uint32
	childrenPtr, childrenLen     uint32
	relatedPtr, relatedLen       uint32
	configTag, configPtr         uint32
	configLen                    uint32
	desiredTag, desiredPtr       uint32
	desiredLen                   uint32
}

// liftRequest reads the request the host wrote into memory and parses it.
func liftRequest(m memory, flat flatRequest) (*Request, *Error) {
	strings := func(address, count uint32) []string {
		list := make([]string, count)
		for i := range count {
			element := address + 8*i
			list[i] = m.stringAt(m.load32(element), m.load32(element+4))
		}
		return list
	}
	var config *string
	if flat.configTag != 0 {
		text := m.stringAt(flat.configPtr, flat.configLen)
		config = &text
	}
	request, err := ParseRequest(
		m.stringAt(flat.reconcilerPtr, flat.reconcilerLen),
		m.stringAt(flat.parentPtr, flat.parentLen),
		strings(flat.childrenPtr, flat.childrenLen),
		strings(flat.relatedPtr, flat.relatedLen),
		config,
	)
	if err == nil && flat.desiredTag != 0 {
		request.desired, err = ParseDesired(m.stringAt(flat.desiredPtr, flat.desiredLen))
	}
	return request, err
}

// reconcileExport is what the reconcile export does, memory aside.
func reconcileExport(m memory, flat flatRequest) uint32 {
	return exportCall(m, flat, func(request *Request) (Wire, *Error) {
		response, err := RunReconcile(registered, request)
		if err != nil {
			return Wire{}, err
		}
		return response.Wire()
	}, lowerReconcileResult)
}

// finalizeExport is what the finalize export does, memory aside.
func finalizeExport(m memory, flat flatRequest) uint32 {
	return exportCall(m, flat, func(request *Request) (Wire, *Error) {
		response, err := RunFinalize(registered, request)
		if err != nil {
			return Wire{}, err
		}
		return response.Wire(), nil
	}, lowerFinalizeResult)
}

// exportCall lifts the request, has the registered reconciler answer it and
// lowers the answer, or the error of whichever step failed.
func exportCall(m memory, flat flatRequest, answer func(*Request) (Wire, *Error), lower func(memory, Wire, *Error) uint32) uint32 {
	request, err := liftRequest(m, flat)
	var wire Wire
	if err == nil {
		if registered == nil {
			err = Transient("no reconciler registered: call sous.Register from an init function")
		} else {
			wire, err = answer(request)
		}
	}
	return lower(m, wire, err)
}
