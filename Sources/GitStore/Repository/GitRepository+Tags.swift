import Clibgit2
import Dispatch
import Foundation

extension GitRepository {
    /// Creates the annotated tag `name` on `commit` with `message`, signed by `tagger` (name,
    /// email) or, when nil, by the repository's configured identity (`user.name`, `user.email`),
    /// else `Pedigree <pedigree@localhost>`. Refused when the tag exists. Blocks the calling thread.
    public func createTag(_ name: String, commit: String, message: String, tagger: (name: String, email: String)? = nil) throws {
        try withHandle { handle throws in
            var valid: Int32 = 0
            guard git_tag_name_is_valid(&valid, name) == 0, valid == 1 else { throw GitError(.other, "\(name) is not a valid tag name") }
            var oid = git_oid()
            try check(git_oid_fromstr(&oid, commit), "commit \(commit)")
            var target: OpaquePointer?
            try check(git_object_lookup(&target, handle.pointer, &oid, GIT_OBJECT_COMMIT), "commit \(commit)")
            defer { git_object_free(target) }
            var signature: UnsafeMutablePointer<git_signature>?
            if let tagger {
                try check(git_signature_now(&signature, tagger.name, tagger.email), "tagger")
            } else if git_signature_default(&signature, handle.pointer) != 0 {
                try check(git_signature_now(&signature, "Pedigree", "pedigree@localhost"), "tagger")
            }
            defer { git_signature_free(signature) }
            var created = git_oid()
            try check(git_tag_create(&created, handle.pointer, name, target, signature, message, 0), "create tag \(name)")
        }
    }

    /// Deletes the tag `name` here (not at the source).
    public func deleteTag(_ name: String) throws {
        try withHandle { handle throws in try check(git_tag_delete(handle.pointer, name), "delete tag \(name)") }
    }

    /// Pushes the tag `name` to the source (`origin`); a mirror opened in place has none, and
    /// nothing is pushed. Credentials: the user and password in the source URL, or for SSH the
    /// agent's keys (asked once). A push past `timeout` is stopped. Blocks the calling thread.
    public func pushTag(_ name: String, timeout: Duration = .seconds(60)) throws {
        guard source != nil else { return }
        try withHandle { handle throws in
            var remote: OpaquePointer?
            try check(git_remote_lookup(&remote, handle.pointer, "origin"), "remote origin")
            defer { git_remote_free(remote) }
            var options = git_push_options()
            try check(git_push_options_init(&options, UInt32(GIT_PUSH_OPTIONS_VERSION)), "push options")
            // What the callbacks share: the remote's refusal, how often credentials were asked
            // (once: libgit2 asks again after a rejection, and would for ever), and the deadline.
            struct Exchange {
                var refusal: String?
                var credentialRequests = 0
                var deadline: UInt64
            }
            var exchange = Exchange(deadline: DispatchTime.now().uptimeNanoseconds &+ UInt64(timeout.components.seconds) &* 1_000_000_000)
            options.callbacks.credentials = { out, url, username, allowed, payload in
                guard let exchange = payload?.assumingMemoryBound(to: Exchange.self) else { return GIT_PASSTHROUGH.rawValue }
                exchange.pointee.credentialRequests += 1
                guard exchange.pointee.credentialRequests == 1 else { return GIT_EAUTH.rawValue }
                let components = url.flatMap { URLComponents(string: String(cString: $0)) }
                if allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0, let user = components?.user, let password = components?.password {
                    return git_credential_userpass_plaintext_new(out, user, password)
                }
                if allowed & GIT_CREDENTIAL_SSH_KEY.rawValue != 0 {
                    return git_credential_ssh_key_from_agent(out, username.map { String(cString: $0) } ?? "git")
                }
                return GIT_PASSTHROUGH.rawValue
            }
            // A ref the remote refuses (the tag exists there) is reported per ref, not as a failure.
            options.callbacks.push_update_reference = { _, status, payload in
                if let status, let exchange = payload?.assumingMemoryBound(to: Exchange.self) { exchange.pointee.refusal = String(cString: status) }
                return 0
            }
            options.callbacks.push_transfer_progress = { _, _, _, payload in
                guard let exchange = payload?.assumingMemoryBound(to: Exchange.self) else { return 0 }
                return DispatchTime.now().uptimeNanoseconds > exchange.pointee.deadline ? -1 : 0
            }
            let spec = "refs/tags/\(name):refs/tags/\(name)"
            let code = withUnsafeMutablePointer(to: &exchange) { pointer -> Int32 in
                options.callbacks.payload = UnsafeMutableRawPointer(pointer)
                return spec.withCString { raw -> Int32 in
                    var strings: UnsafeMutablePointer<CChar>? = UnsafeMutablePointer(mutating: raw)
                    return withUnsafeMutablePointer(to: &strings) { array in
                        var refspecs = git_strarray(strings: array, count: 1)
                        return git_remote_push(remote, &refspecs, &options)
                    }
                }
            }
            let refusal = exchange.refusal
            if code < 0 { throw GitError(.push, GitError.fromLibgit2(code, "push \(name)").message) }
            if let refusal { throw GitError(.push, "the remote refused \(name): \(refusal)") }
        }
    }
}
