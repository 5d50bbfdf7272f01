import Foundation

#if FUZZING
    /// The fuzzer's callback: one input through the selected target.
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzOne(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
        Selected.target.run(Data(bytes: bytes, count: count))
        return 0
    }

    /// libFuzzer's driver (in the fuzzer runtime that `-sanitize=fuzzer` links).
    @_silgen_name("LLVMFuzzerRunDriver")
    func runDriver(
        _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
    ) -> CInt

    /// Built by `script/fuzz` (`-sanitize=fuzzer,address -DFUZZING`): libFuzzer runs the target that
    /// `PEDIGREE_FUZZ_TARGET` names, with libFuzzer's own arguments.
    @main
    struct Fuzz {
        static func main() {
            _ = Selected.target
            var argc = CommandLine.argc
            var argv = CommandLine.unsafeArgv
            exit(runDriver(&argc, &argv) { bytes, count in fuzzOne(bytes, count) })
        }
    }

    enum Selected {
        static let target: FuzzTarget = {
            let name = ProcessInfo.processInfo.environment["PEDIGREE_FUZZ_TARGET"] ?? ""
            guard let target = FuzzTarget(rawValue: name) else {
                FileHandle.standardError.write(
                    Data("PEDIGREE_FUZZ_TARGET must be one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
                exit(2)
            }
            return target
        }()
    }
#else
    /// Without the fuzzer: runs every file of the given corpus folders through a target once (the
    /// regression run `script/test` does over `Fuzz/corpus/`).
    ///
    ///     pedigree-fuzz TARGET FOLDER…     runs one target
    ///     pedigree-fuzz --all ROOT         runs ROOT/<target>/* for every target
    @main
    struct ReplayCorpus {
        static func main() {
            let arguments = Array(CommandLine.arguments.dropFirst())
            var runs: [(FuzzTarget, [String])] = []
            if arguments.first == "--all", arguments.count == 2 {
                runs = FuzzTarget.allCases.map { ($0, [arguments[1] + "/" + $0.rawValue]) }
            } else if let name = arguments.first, let target = FuzzTarget(rawValue: name) {
                runs = [(target, Array(arguments.dropFirst()))]
            } else {
                print("usage: pedigree-fuzz TARGET FOLDER… | --all ROOT  (targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")))")
                exit(2)
            }
            for (target, folders) in runs {
                var count = 0
                for folder in folders {
                    let files = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
                    for file in files.sorted() {
                        guard let data = FileManager.default.contents(atPath: folder + "/" + file) else { continue }
                        target.run(data)
                        count += 1
                    }
                }
                print("\(target.rawValue): \(count) inputs")
            }
        }
    }
#endif
