import ArgumentParser
import Foundation
import Trust

/// `pedigree verify-weights FILE --signature SIG --trust PEM`: an OpenSSF Model Signing signature
/// of a weights file, checked offline (key or certificate method).
struct VerifyWeights: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-weights",
        abstract: "Check a weights file against its OpenSSF Model Signing signature (model-signing's bundle), offline.",
        discussion: """
            The signature must verify with a trusted public key (key method) or come with a certificate chain that leads \
            to a trusted CA (certificate method), and sign this file's SHA-256. Exits 1 saying why not.
            """)

    @Argument(help: "The weights file.")
    var file: String

    @Option(help: "The signature (model-signing's Sigstore bundle); default: FILE.sig.")
    var signature: String?

    @Option(help: "A PEM file of trusted public keys and/or CA certificates (repeatable).")
    var trust: [String] = []

    func run() async throws {
        var signers = ModelSigning.TrustedSigners()
        for path in trust {
            do {
                signers.add(try ModelSigning.TrustedSigners(contentsOfFile: path))
            } catch {
                throw ValidationError("--trust \(path): \(error)")
            }
        }
        let signaturePath = signature ?? file + ".sig"
        let size = (try? FileManager.default.attributesOfItem(atPath: signaturePath)[.size] as? NSNumber)?.intValue ?? 0
        guard size <= ModelSigning.maxBundle, let bundle = FileManager.default.contents(atPath: signaturePath) else {
            throw ValidationError("\(signaturePath) cannot be read (or is larger than \(ModelSigning.maxBundle) bytes)")
        }
        let digest: String
        do {
            digest = try ModelSigning.sha256(ofFile: file)
        } catch {
            throw ValidationError("\(file) cannot be read: \(error)")
        }
        do {
            let verified = try await ModelSigning.verify(bundle: bundle, fileSHA256: digest, trusting: signers)
            print("verified: \(verified.method.rawValue) method, signer \(verified.signer), model \(verified.model)")
            print("sha256: \(digest)")
        } catch {
            FileHandle.standardError.write(Data("FAIL \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

}
