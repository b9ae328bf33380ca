// The converters live in their own module (Foundation and Domains only), so that the fuzzer under
// `ops/fuzz` can build them without the HTTP stack; kensho users keep one import.
@_exported import KenshoConverters
