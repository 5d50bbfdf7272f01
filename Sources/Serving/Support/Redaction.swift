/// Credentials inside URLs (`scheme://user:password@host`, `scheme://token@host`) replaced by
/// `<redacted>` wherever a URL is shown or logged: `repository { source }`, `config check`, and
/// every log line (`LogOutput` filters them all).
public enum Redaction {
    public static let mark = "<redacted>"

    /// `text` with the user-info of every URL in it redacted: the password when there is a user,
    /// else the whole user-info (a lone token). Text without `@` is returned as it is.
    public static func urlCredentials(in text: String) -> String {
        let bytes = Array(text.utf8)
        guard bytes.contains(0x40) else { return text }  // no '@'
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            // "://" starts an authority.
            if index + 2 < bytes.count, bytes[index] == 0x3A, bytes[index + 1] == 0x2F, bytes[index + 2] == 0x2F {
                output.append(contentsOf: [0x3A, 0x2F, 0x2F])
                let start = index + 3
                var end = start
                var at: Int?
                while end < bytes.count, !isAuthorityEnd(bytes[end]) {
                    if bytes[end] == 0x40 { at = end }
                    end += 1
                }
                if let at {
                    let userInfo = bytes[start..<at]
                    if let colon = userInfo.firstIndex(of: 0x3A) {
                        output.append(contentsOf: bytes[start...colon])
                    }
                    output.append(contentsOf: Array(mark.utf8))
                    output.append(contentsOf: bytes[at..<end])
                } else {
                    output.append(contentsOf: bytes[start..<end])
                }
                index = end
                continue
            }
            output.append(bytes[index])
            index += 1
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Bytes that end a URL's authority in running text: `/ ? #` and white space. Not quotes,
    /// brackets or commas: a password may hold them (DVC and Git take them unencoded), and
    /// stopping there would show the rest of it; a span that runs on past the URL is redacted too
    /// far, never too little.
    private static func isAuthorityEnd(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x2F, 0x3F, 0x23, 0x20, 0x09, 0x0A, 0x0D: true
        default: false
        }
    }
}
