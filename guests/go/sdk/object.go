package sous

// ObjectBuilder is a desired object under construction.
type ObjectBuilder struct {
	object Object
}

// NewObject starts a desired object of apiVersion/kind named name. Its
// namespace defaults to the parent's unless Namespace sets one.
func NewObject(apiVersion, kind, name string) *ObjectBuilder {
	return &ObjectBuilder{object: Object{
		"apiVersion": apiVersion,
		"kind":       kind,
		"metadata":   Object{"name": name},
	}}
}

// Namespace sets metadata.namespace.
func (b *ObjectBuilder) Namespace(namespace string) *ObjectBuilder {
	b.metadata()["namespace"] = namespace
	return b
}

// Label adds one label.
func (b *ObjectBuilder) Label(key, value string) *ObjectBuilder {
	return b.metadataEntry("labels", key, value)
}

// Labels adds several labels, so that one map can serve as the labels, the
// selector and the pod template's labels.
func (b *ObjectBuilder) Labels(labels map[string]string) *ObjectBuilder {
	for key, value := range labels {
		b.Label(key, value)
	}
	return b
}

// Annotation adds one annotation.
func (b *ObjectBuilder) Annotation(key, value string) *ObjectBuilder {
	return b.metadataEntry("annotations", key, value)
}

// Spec sets .spec.
func (b *ObjectBuilder) Spec(spec any) *ObjectBuilder { return b.Field("spec", spec) }

// Field sets any top-level field (data of a ConfigMap, say).
func (b *ObjectBuilder) Field(name string, value any) *ObjectBuilder {
	b.object[name] = value
	return b
}

// Build is the finished object.
func (b *ObjectBuilder) Build() Object { return b.object }

func (b *ObjectBuilder) metadata() Object {
	return b.object["metadata"].(Object)
}

func (b *ObjectBuilder) metadataEntry(field, key, value string) *ObjectBuilder {
	entries, ok := b.metadata()[field].(Object)
	if !ok {
		entries = Object{}
		b.metadata()[field] = entries
	}
	entries[key] = value
	return b
}
