package sous

import (
	"encoding/binary"
	"reflect"
	"testing"
)

// ---- the canonical ABI's layout rules, independently of layout.go ---------

// abiType is a WIT type, enough of it for sous:reconciler.
type abiType struct {
	kind     string // u8, u32, u64, string, list, option, record, variant
	fields   []abiType
	elements *abiType // list
}

var (
	tU8     = abiType{kind: "u8"}
	tU64    = abiType{kind: "u64"}
	tString = abiType{kind: "string"}
)

func tList(element abiType) abiType { return abiType{kind: "list", elements: &element} }
func tOption(some abiType) abiType {
	return abiType{kind: "variant", fields: []abiType{{kind: "none"}, some}}
}
func tRecord(fields ...abiType) abiType   { return abiType{kind: "record", fields: fields} }
func tVariant(cases ...abiType) abiType   { return abiType{kind: "variant", fields: cases} }
func alignTo(offset, align uint32) uint32 { return (offset + align - 1) / align * align }

func (t abiType) alignment() uint32 {
	switch t.kind {
	case "none", "u8":
		return 1
	case "u32", "string", "list":
		return 4
	case "u64":
		return 8
	}
	align := uint32(1) // record, variant (a u8 discriminant: fewer than 256 cases)
	for _, field := range t.fields {
		align = max(align, field.alignment())
	}
	return align
}

func (t abiType) size() uint32 {
	switch t.kind {
	case "none":
		return 0
	case "u8":
		return 1
	case "u32":
		return 4
	case "u64", "string", "list":
		return 8
	case "record":
		return alignTo(t.offsets()[len(t.fields)], t.alignment())
	}
	payload := uint32(0)
	for _, field := range t.fields {
		payload = max(payload, field.size())
	}
	return alignTo(t.payloadOffset()+payload, t.alignment())
}

// offsets of a record's fields, then the end of the last one.
func (t abiType) offsets() []uint32 {
	var offsets []uint32
	offset := uint32(0)
	for _, field := range t.fields {
		offset = alignTo(offset, field.alignment())
		offsets = append(offsets, offset)
		offset += field.size()
	}
	return append(offsets, offset)
}

// payloadOffset of a variant: after its u8 discriminant.
func (t abiType) payloadOffset() uint32 {
	maxAlign := uint32(1)
	for _, field := range t.fields {
		maxAlign = max(maxAlign, field.alignment())
	}
	return alignTo(1, maxAlign)
}

var (
	tEvent          = tRecord(tU8, tString, tString)
	tKeyValue       = tRecord(tString, tString) // a tuple lays out as a record
	tRelatedRequest = tRecord(tString, tString, tOption(tString), tOption(tString), tOption(tString))
	tResponse       = tRecord(tList(tString), tOption(tString), tOption(tU64), tList(tEvent),
		tOption(tList(tKeyValue)), tOption(tList(tKeyValue)), tList(tString), tList(tRelatedRequest))
	tFinalizeResponse = tRecord(tU8, tOption(tU64), tList(tEvent))
	tError            = tVariant(tString, tString)
)

func TestTheLayoutConstantsFollowTheCanonicalABI(t *testing.T) {
	check := func(what string, got, want uint32) {
		t.Helper()
		if got != want {
			t.Errorf("%s: layout.go says %d, the canonical ABI %d", what, got, want)
		}
	}
	check("option<string> size", optionStringSize, tOption(tString).size())
	check("option<u64> payload", optionU64Value, tOption(tU64).payloadOffset())
	check("event size", eventSize, tEvent.size())
	check("event.reason", eventReason, tEvent.offsets()[1])
	check("event.message", eventMessage, tEvent.offsets()[2])
	check("key-value size", keyValueSize, tKeyValue.size())
	check("key-value value", keyValueValue, tKeyValue.offsets()[1])
	check("related-request size", relatedRequestSize, tRelatedRequest.size())
	check("related-request align", relatedRequestAlignment, tRelatedRequest.alignment())
	related := tRelatedRequest.offsets()
	check("related-request.kind", relatedRequestKind, related[1])
	check("related-request.namespace", relatedRequestNamespace, related[2])
	check("related-request.name", relatedRequestName, related[3])
	check("related-request.selector", relatedRequestSelector, related[4])
	check("option<list<key-value>> size", optionListKeyValueSize, tOption(tList(tKeyValue)).size())
	check("option<list<key-value>> payload", optionListKeyValueList, tOption(tList(tKeyValue)).payloadOffset())
	response := tResponse.offsets()
	for i, want := range []uint32{responseChildren, responseStatus, responseRequeueAfterMs, responseEvents,
		responseParentLabels, responseParentAnnotations, responsePatches, responseRelatedRequests} {
		check("response field "+string(rune('0'+i)), want, response[i])
	}
	check("response size", responseSize, tResponse.size())
	finalize := tFinalizeResponse.offsets()
	check("finalize-response.done", finalizeDone, finalize[0])
	check("finalize-response.requeue-after-ms", finalizeRequeueAfterMs, finalize[1])
	check("finalize-response.events", finalizeEvents, finalize[2])
	check("finalize-response size", finalizeResponseSize, tFinalizeResponse.size())
	reconcileResult := tVariant(tResponse, tError)
	check("result<response, error> size", reconcileResultSize, reconcileResult.size())
	check("result<response, error> align", resultAlignment, reconcileResult.alignment())
	check("result<response, error> payload", resultPayload, reconcileResult.payloadOffset())
	check("result<finalize-response, error> size", finalizeResultSize, tVariant(tFinalizeResponse, tError).size())
	check("error payload", errorMessage, tError.payloadOffset())
	if reconcileResultSize != 96 || relatedRequestSize != 52 {
		t.Errorf("sizes changed: result %d, related-request %d", reconcileResultSize, relatedRequestSize)
	}
}

// ---- a memory of bytes, to run the lowering natively ------------------------

type byteMemory struct {
	bytes []byte
}

func newByteMemory() *byteMemory { return &byteMemory{bytes: make([]byte, 64)} } // 0..63: unused

func (m *byteMemory) alloc(size, align uint32) uint32 {
	address := alignTo(uint32(len(m.bytes)), align)
	m.bytes = append(m.bytes, make([]byte, address+size-uint32(len(m.bytes)))...)
	return address
}
func (m *byteMemory) store8(address uint32, value uint8) { m.bytes[address] = value }
func (m *byteMemory) store32(address, value uint32) {
	binary.LittleEndian.PutUint32(m.bytes[address:], value)
}
func (m *byteMemory) store64(address uint32, value uint64) {
	binary.LittleEndian.PutUint64(m.bytes[address:], value)
}
func (m *byteMemory) load8(address uint32) uint8 { return m.bytes[address] }
func (m *byteMemory) load32(address uint32) uint32 {
	return binary.LittleEndian.Uint32(m.bytes[address:])
}
func (m *byteMemory) load64(address uint32) uint64 {
	return binary.LittleEndian.Uint64(m.bytes[address:])
}
func (m *byteMemory) stringData(s string) uint32 {
	address := m.alloc(uint32(len(s)), 1)
	copy(m.bytes[address:], s)
	return address
}
func (m *byteMemory) stringAt(address, length uint32) string {
	return string(m.bytes[address : address+length])
}

// str reads the string whose (ptr, len) is at address.
func (m *byteMemory) str(address uint32) string {
	return m.stringAt(m.load32(address), m.load32(address+4))
}

// optStr reads an option<string> at address as (value, present).
func (m *byteMemory) optStr(address uint32) (string, bool) {
	if m.load8(address) == 0 {
		return "", false
	}
	return m.str(address + 4), true
}

// list reads the (ptr, len) of a list at address, checking the alignment.
func (m *byteMemory) list(t *testing.T, address, align uint32) (uint32, uint32) {
	t.Helper()
	pointer, length := m.load32(address), m.load32(address+4)
	if pointer%align != 0 {
		t.Fatalf("list at %d: pointer %d not aligned to %d", address, pointer, align)
	}
	return pointer, length
}

func TestAResponseWithEveryFieldIsLoweredAtTheCanonicalOffsets(t *testing.T) {
	requeue := uint64(1500)
	status := `{"phase":"Ready"}`
	wire := Wire{
		Children:          []string{`{"kind":"A"}`, `{"kind":"B"}`},
		Status:            &status,
		RequeueAfterMs:    &requeue,
		Events:            []Event{Warning("Slow", "took long")},
		ParentLabels:      []KeyValue{{"app", "web"}, {"tier", "front"}},
		ParentAnnotations: []KeyValue{},
		Patches:           []string{`{"kind":"Deployment"}`},
		RelatedRequests: []RelatedRequest{
			{APIVersion: "v1", Kind: "Secret", Namespace: "*", Name: "creds", Selector: "app=web"},
			{APIVersion: "apps/v1", Kind: "Deployment"},
		},
	}
	m := newByteMemory()
	result := lowerReconcileResult(m, wire, nil)
	if result%8 != 0 || uint32(len(m.bytes)) < result+96 {
		t.Fatalf("return area at %d, memory %d bytes", result, len(m.bytes))
	}
	if m.load8(result) != 0 {
		t.Fatal("ok")
	}
	r := result + 8
	children, count := m.list(t, r+0, 4)
	if count != 2 || m.str(children) != `{"kind":"A"}` || m.str(children+8) != `{"kind":"B"}` {
		t.Fatalf("children: %d", count)
	}
	if got, ok := m.optStr(r + 8); !ok || got != status {
		t.Fatalf("status %q %v", got, ok)
	}
	if m.load8(r+24) != 1 || m.load64(r+32) != 1500 {
		t.Fatal("requeue-after-ms @24, value @32")
	}
	events, count := m.list(t, r+40, 4)
	if count != 1 || m.load8(events) != 1 || m.str(events+4) != "Slow" || m.str(events+12) != "took long" {
		t.Fatal("events @40")
	}
	if m.load8(r+48) != 1 {
		t.Fatal("parent-labels @48: some")
	}
	labels, count := m.list(t, r+52, 4)
	if count != 2 || m.str(labels) != "app" || m.str(labels+8) != "web" ||
		m.str(labels+16) != "tier" || m.str(labels+24) != "front" {
		t.Fatal("parent-labels: 16-byte (key, value) tuples")
	}
	if m.load8(r+60) != 1 {
		t.Fatal("parent-annotations @60: some, even empty")
	}
	if _, count := m.list(t, r+64, 4); count != 0 {
		t.Fatal("parent-annotations: the empty set")
	}
	patches, count := m.list(t, r+72, 4)
	if count != 1 || m.str(patches) != `{"kind":"Deployment"}` {
		t.Fatal("patches @72")
	}
	related, count := m.list(t, r+80, 4)
	if count != 2 {
		t.Fatalf("related-requests @80: %d", count)
	}
	type lifted struct {
		apiVersion, kind              string
		namespace, name, selector     string
		hasNamespace, hasName, hasSel bool
	}
	lift := func(element uint32) lifted {
		var l lifted
		l.apiVersion, l.kind = m.str(element), m.str(element+8)
		l.namespace, l.hasNamespace = m.optStr(element + 16)
		l.name, l.hasName = m.optStr(element + 28)
		l.selector, l.hasSel = m.optStr(element + 40)
		return l
	}
	if got := lift(related); got != (lifted{"v1", "Secret", "*", "creds", "app=web", true, true, true}) {
		t.Fatalf("first related-request: %+v", got)
	}
	if got := lift(related + 52); got != (lifted{apiVersion: "apps/v1", kind: "Deployment"}) {
		t.Fatalf("second related-request (52 bytes further), every option none: %+v", got)
	}
}

func TestALeanResponseLeavesTheNewFieldsNoneAndEmpty(t *testing.T) {
	m := newByteMemory()
	result := lowerReconcileResult(m, Wire{}, nil)
	r := result + 8
	for _, offset := range []uint32{8, 24, 48, 60} {
		if m.load8(r+offset) != 0 {
			t.Errorf("option @%d is some", offset)
		}
	}
	for _, offset := range []uint32{0, 40, 72, 80} {
		if _, count := m.list(t, r+offset, 4); count != 0 {
			t.Errorf("list @%d has %d elements", offset, count)
		}
	}
}

func TestAnErrorIsLoweredAsResultErr(t *testing.T) {
	m := newByteMemory()
	result := lowerReconcileResult(m, Wire{}, Transient("later"))
	if m.load8(result) != 1 || m.load8(result+8) != 1 || m.str(result+12) != "later" {
		t.Fatal("err @0, transient @8, message @12")
	}
	result = lowerFinalizeResult(m, Wire{}, Invalid("bad"))
	if m.load8(result) != 1 || m.load8(result+8) != 0 || m.str(result+12) != "bad" {
		t.Fatal("err @0, invalid @8, message @12")
	}
	requeue := uint64(7)
	result = lowerFinalizeResult(m, Wire{Done: true, RequeueAfterMs: &requeue}, nil)
	if m.load8(result) != 0 || m.load8(result+8) != 1 || m.load8(result+16) != 1 || m.load64(result+24) != 7 {
		t.Fatal("finalize-response: done @8, requeue-after-ms @16 (value @24)")
	}
}

// echo answers what it received, to check the lifting of the request.
type echo struct{}

func (echo) Reconcile(request *Request) (*Response, error) {
	response := NewResponseFrom(request.Desired())
	var config map[string]any
	if given, _ := request.Config(&config); given {
		response.Patch(config)
	}
	for _, related := range request.Related() {
		response.Patch(related)
	}
	return response.ParentLabel("reconciler", request.Reconciler()).ParentLabel("parent", request.Name()), nil
}

func TestTheFourteenFlatParametersAreLiftedIntoARequest(t *testing.T) {
	m := newByteMemory()
	text := func(s string) (uint32, uint32) { return m.stringData(s), uint32(len(s)) }
	list := func(texts ...string) (uint32, uint32) {
		address := m.alloc(uint32(8*len(texts)), 4)
		for i, s := range texts {
			lowerString(m, address+uint32(8*i), s)
		}
		return address, uint32(len(texts))
	}
	var flat flatRequest
	flat.reconcilerPtr, flat.reconcilerLen = text("r")
	flat.parentPtr, flat.parentLen = text(`{"metadata": {"name": "p"}}`)
	flat.childrenPtr, flat.childrenLen = list(`{"kind": "Service", "metadata": {"name": "p"}}`)
	flat.relatedPtr, flat.relatedLen = list(`{"kind": "Node"}`)
	flat.configTag = 1
	flat.configPtr, flat.configLen = text(`{"level": 2}`)
	flat.desiredTag = 1
	flat.desiredPtr, flat.desiredLen = text(`{"children": [{"kind": "ConfigMap"}], "status": {"phase": "Proposed"}}`)

	registered = echo{}
	defer func() { registered = nil }()
	r := reconcileExport(m, flat) + 8
	children, count := m.list(t, r, 4)
	if count != 1 || m.str(children) != `{"kind":"ConfigMap"}` {
		t.Fatalf("desired's children: %d", count)
	}
	if status, _ := m.optStr(r + 8); status != `{"phase":"Proposed"}` {
		t.Fatalf("desired's status: %q", status)
	}
	patches, count := m.list(t, r+72, 4)
	if count != 2 || m.str(patches) != `{"level":2}` || m.str(patches+8) != `{"kind":"Node"}` {
		t.Fatalf("config and related: %d", count)
	}
	labels, _ := m.list(t, r+52, 4)
	if m.str(labels) != "parent" || m.str(labels+8) != "p" || m.str(labels+24) != "r" {
		t.Fatal("reconciler and parent names")
	}

	flat.desiredTag = 0
	r = reconcileExport(m, flat) + 8
	if _, count := m.list(t, r, 4); count != 0 {
		t.Fatal("desired none: no proposed children")
	}
	flat.desiredTag, flat.desiredLen = 1, 3
	if result := reconcileExport(m, flat); m.load8(result) != 1 || m.load8(result+8) != 1 {
		t.Fatal("a desired that is not JSON is a transient error")
	}
}

func TestWireNilMeansNoneAndEmptyMeansTheEmptySet(t *testing.T) {
	if !reflect.DeepEqual(sorted(nil), []KeyValue(nil)) || sorted(map[string]string{}) == nil {
		t.Fatal("sorted keeps nil and non-nil apart")
	}
}
