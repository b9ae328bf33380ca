import Domains
import Foundation
import KenshoConverters

/// One input, three readers, chosen by its first byte so one corpus covers them all:
/// 0 → kensho/v1 decode + validate, 1 → JUnit XML, 2 → one Allure result. Any trap (an overflowing
/// conversion, an out-of-range index, a stack overflow) is what libFuzzer reports as a crash;
/// thrown errors are the envelope answers the server gives and are fine.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count > 0 else { return 0 }
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let body = Array(bytes.dropFirst())
    switch bytes[0] % 3 {
    case 0:
        if let run = try? KenshoJSON.decode(body) {
            _ = KenshoValidator().validate(run, knownAttachments: ["a1", "a2"])
        }
    case 1:
        if let converted = try? JUnitConverter.convert(documents: [("fuzz.xml", Data(body))]) {
            _ = KenshoValidator().validate(converted.run, knownAttachments: Set(converted.attachments.keys))
        }
    default:
        if let converted = try? AllureConverter.convert(results: [("fuzz-result.json", Data(body))], attachment: { _ in nil }) {
            _ = KenshoValidator().validate(converted.run, knownAttachments: Set(converted.attachments.keys))
        }
    }
    return 0
}

// SwiftPM links an executable's entry point as `<module>_main` (and points `main` at it), which
// would shadow libFuzzer's own `main`: hand control to libFuzzer's driver from there.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafeRawPointer?, Int) -> CInt
) -> CInt

@_cdecl("KenshoFuzz_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        guard let data else { return 0 }
        return fuzz(data, size)
    }
}
