// A small ONNX model writer: typed graph specs in, protobuf bytes out.
//
// Only the part of onnx.proto needed to write inference graphs with float
// initializers is embedded. Field numbers match onnx/onnx.proto (proto2), so
// any ONNX reader (onnxruntime, onnx.checker, Netron) can load the output.

import protobuf from 'protobufjs';

export const IR_VERSION = 8;
export const OPSET_VERSION = 13;
export const PRODUCER_NAME = 'clipper-nats';

const ONNX_PROTO_SUBSET = `
syntax = "proto2";
package onnx;

message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0;
    FLOAT = 1;
    INT = 2;
    STRING = 3;
    TENSOR = 4;
    GRAPH = 5;
    FLOATS = 6;
    INTS = 7;
    STRINGS = 8;
    TENSORS = 9;
    GRAPHS = 10;
    SPARSE_TENSOR = 11;
    SPARSE_TENSORS = 12;
  }
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  optional GraphProto g = 6;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  repeated TensorProto tensors = 10;
  repeated GraphProto graphs = 11;
  optional string doc_string = 13;
  optional AttributeType type = 20;
  optional string ref_attr_name = 21;
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
  optional string doc_string = 3;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
  optional string domain = 7;
}

message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}

message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
  repeated StringStringEntryProto metadata_props = 14;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}

message TensorProto {
  enum DataType {
    UNDEFINED = 0;
    FLOAT = 1;
    UINT8 = 2;
    INT8 = 3;
    UINT16 = 4;
    INT16 = 5;
    INT32 = 6;
    INT64 = 7;
    STRING = 8;
    BOOL = 9;
    FLOAT16 = 10;
    DOUBLE = 11;
    UINT32 = 12;
    UINT64 = 13;
  }
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated bytes string_data = 6;
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional bytes raw_data = 9;
  optional string doc_string = 12;
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
    optional string denotation = 3;
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
  optional string denotation = 6;
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
`;

// Parsed once at module load; the default (camelCase) field names are used below.
const onnxRoot = protobuf.parse(ONNX_PROTO_SUBSET).root;
const modelProtoType = onnxRoot.lookupType('onnx.ModelProto');

/** TensorProto.DataType values used by this writer. */
export const DataType = { FLOAT: 1, INT64: 7 } as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

/** AttributeProto.AttributeType values. */
const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

/** A dimension: a fixed size, or a symbolic name such as "N" for the batch. */
export type Dim = number | string;

export interface ValueInfoSpec {
  readonly name: string;
  readonly dims: readonly Dim[];
  /** Defaults to FLOAT. */
  readonly elemType?: DataTypeCode;
}

/** A float32 constant baked into the graph; `dims: []` is a scalar. */
export interface FloatInitializerSpec {
  readonly name: string;
  readonly dims: readonly number[];
  readonly values: Float32Array | readonly number[];
}

export type AttributeValue =
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'ints'; readonly value: readonly number[] };

/** Constructors that make the float/int distinction explicit (ONNX cares). */
export const attr = {
  float: (value: number): AttributeValue => ({ kind: 'float', value }),
  int: (value: number): AttributeValue => ({ kind: 'int', value }),
  string: (value: string): AttributeValue => ({ kind: 'string', value }),
  floats: (value: readonly number[]): AttributeValue => ({ kind: 'floats', value }),
  ints: (value: readonly number[]): AttributeValue => ({ kind: 'ints', value }),
};

export interface NodeSpec {
  readonly opType: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly name?: string;
  /** Operator set domain; "" (the default) is the standard ai.onnx set. */
  readonly domain?: string;
  readonly attributes?: Readonly<Record<string, AttributeValue>>;
}

export interface GraphSpec {
  readonly name: string;
  /** Must be in topological order (ONNX requires it). */
  readonly nodes: readonly NodeSpec[];
  readonly initializers: readonly FloatInitializerSpec[];
  readonly inputs: readonly ValueInfoSpec[];
  readonly outputs: readonly ValueInfoSpec[];
  readonly docString?: string;
}

export interface ModelOptions {
  readonly producerName?: string;
  readonly producerVersion?: string;
  readonly modelVersion?: number;
  readonly docString?: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

// Plain-object shapes of the protobuf messages (camelCase, as protobufjs expects).
export interface TensorProtoObject {
  name: string;
  dims: number[];
  dataType: number;
  rawData: Uint8Array;
}
export interface DimensionObject {
  dimValue?: number;
  dimParam?: string;
}
export interface ValueInfoProtoObject {
  name: string;
  type: { tensorType: { elemType: number; shape: { dim: DimensionObject[] } } };
}
export interface AttributeProtoObject {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  floats?: number[];
  ints?: number[];
}
export interface NodeProtoObject {
  opType: string;
  input: string[];
  output: string[];
  name?: string;
  domain?: string;
  attribute: AttributeProtoObject[];
}
export interface GraphProtoObject {
  name: string;
  node: NodeProtoObject[];
  initializer: TensorProtoObject[];
  input: ValueInfoProtoObject[];
  output: ValueInfoProtoObject[];
  docString?: string;
}
export interface ModelProtoObject {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  modelVersion?: number;
  docString?: string;
  graph: GraphProtoObject;
  opsetImport: { domain: string; version: number }[];
  metadataProps: { key: string; value: string }[];
}

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** float32 values as little-endian bytes, the layout raw_data requires on any host. */
export function float32LittleEndian(values: Float32Array | readonly number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  return bytes;
}

export function floatTensor(spec: FloatInitializerSpec): TensorProtoObject {
  for (const d of spec.dims) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`initializer ${spec.name}: bad dim ${d}`);
  }
  if (product(spec.dims) !== spec.values.length) {
    throw new RangeError(
      `initializer ${spec.name}: dims [${spec.dims.join(', ')}] need ${product(spec.dims)} values, got ${spec.values.length}`,
    );
  }
  return {
    name: spec.name,
    dims: [...spec.dims],
    dataType: DataType.FLOAT,
    rawData: float32LittleEndian(spec.values),
  };
}

function dimension(d: Dim): DimensionObject {
  if (typeof d === 'string') {
    if (d.length === 0) throw new RangeError('symbolic dim must be a non-empty string');
    return { dimParam: d };
  }
  if (!Number.isInteger(d) || d < 0) throw new RangeError(`bad dim ${d}`);
  return { dimValue: d };
}

export function valueInfo(spec: ValueInfoSpec): ValueInfoProtoObject {
  return {
    name: spec.name,
    type: {
      tensorType: {
        elemType: spec.elemType ?? DataType.FLOAT,
        shape: { dim: spec.dims.map(dimension) },
      },
    },
  };
}

function attribute(name: string, a: AttributeValue): AttributeProtoObject {
  switch (a.kind) {
    case 'float':
      return { name, type: AttributeType.FLOAT, f: a.value };
    case 'int':
      if (!Number.isSafeInteger(a.value)) throw new RangeError(`attribute ${name}: ${a.value} is not an integer`);
      return { name, type: AttributeType.INT, i: a.value };
    case 'string':
      return { name, type: AttributeType.STRING, s: new TextEncoder().encode(a.value) };
    case 'floats':
      return { name, type: AttributeType.FLOATS, floats: [...a.value] };
    case 'ints':
      return { name, type: AttributeType.INTS, ints: [...a.value] };
  }
}

export function node(spec: NodeSpec): NodeProtoObject {
  const out: NodeProtoObject = {
    opType: spec.opType,
    input: [...spec.inputs],
    output: [...spec.outputs],
    attribute: Object.entries(spec.attributes ?? {}).map(([k, v]) => attribute(k, v)),
  };
  if (spec.name !== undefined) out.name = spec.name;
  if (spec.domain !== undefined && spec.domain !== '') out.domain = spec.domain;
  return out;
}

/**
 * Checks the wiring a runtime would otherwise reject with a vaguer message:
 * unique value names, nodes in topological order, every output produced.
 */
export function checkGraph(spec: GraphSpec): void {
  const defined = new Set<string>();
  const define = (name: string, what: string): void => {
    if (name === '') throw new RangeError(`${what}: empty value name`);
    if (defined.has(name)) throw new RangeError(`${what}: value "${name}" defined twice`);
    defined.add(name);
  };
  for (const v of spec.inputs) define(v.name, 'graph input');
  for (const t of spec.initializers) define(t.name, 'initializer');
  spec.nodes.forEach((n, idx) => {
    const label = `node ${n.name ?? idx} (${n.opType})`;
    for (const input of n.inputs) {
      // "" marks an omitted optional input.
      if (input !== '' && !defined.has(input)) throw new RangeError(`${label}: input "${input}" is not defined before use`);
    }
    for (const output of n.outputs) define(output, label);
  });
  for (const v of spec.outputs) {
    if (!defined.has(v.name)) throw new RangeError(`graph output "${v.name}" is never produced`);
  }
}

export function buildGraph(spec: GraphSpec): GraphProtoObject {
  checkGraph(spec);
  const graph: GraphProtoObject = {
    name: spec.name,
    node: spec.nodes.map(node),
    initializer: spec.initializers.map(floatTensor),
    input: spec.inputs.map(valueInfo),
    output: spec.outputs.map(valueInfo),
  };
  if (spec.docString !== undefined) graph.docString = spec.docString;
  return graph;
}

export function buildModel(graph: GraphProtoObject, options: ModelOptions = {}): ModelProtoObject {
  const model: ModelProtoObject = {
    irVersion: IR_VERSION,
    producerName: options.producerName ?? PRODUCER_NAME,
    producerVersion: options.producerVersion ?? '0.1.0',
    graph,
    opsetImport: [{ domain: '', version: OPSET_VERSION }],
    metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
  if (options.modelVersion !== undefined) model.modelVersion = options.modelVersion;
  if (options.docString !== undefined) model.docString = options.docString;
  return model;
}

/** Serialises a graph as an ONNX ModelProto (ir_version 8, default-domain opset 13). */
export function encodeModel(spec: GraphSpec, options: ModelOptions = {}): Uint8Array {
  const model = buildModel(buildGraph(spec), options);
  const problem = modelProtoType.verify(model);
  if (problem !== null) throw new Error(`invalid ModelProto: ${problem}`);
  return modelProtoType.encode(modelProtoType.fromObject(model)).finish();
}

/** Decodes ModelProto bytes back to a plain object (int64 as numbers), for inspection and tests. */
export function decodeModel(bytes: Uint8Array): Record<string, unknown> {
  return modelProtoType.toObject(modelProtoType.decode(bytes), { longs: Number, defaults: false });
}
