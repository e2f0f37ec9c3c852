import CCrypto

/// Seals provider keys with AES-256-GCM under a key derived (HKDF-SHA256) from the master key.
///
/// Sealed form: `0x01 | nonce (12) | ciphertext | tag (16)`. The connection id is the associated data, so
/// a sealed key copied onto another connection's row does not open.
public struct SecretBox: Sendable {
    private let key: [UInt8]
    static let version: UInt8 = 1
    static let verifierPlaintext = Array("llm-proxy master key check".utf8)

    public init(masterKey: String) throws {
        guard masterKey.utf8.count >= 16 else {
            throw StoreError(.invalid, "the master key must be at least 16 characters (LLM_PROXY_MASTER_KEY)")
        }
        key = Crypto.hkdfSHA256(ikm: Array(masterKey.utf8), salt: Array("llm-proxy/v1".utf8), info: Array("connection-secrets".utf8))
    }

    /// A new random master key (base64url of 32 bytes).
    public static func generateMasterKey() -> String { Crypto.base64URL(Crypto.randomBytes(32)) }

    public func seal(_ plaintext: [UInt8], context: String) -> [UInt8] {
        let nonce = Crypto.randomBytes(12)
        let aad = Array(context.utf8)
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + 16)
        var tag = [UInt8](repeating: 0, count: 16)
        let ctx = EVP_CIPHER_CTX_new()!
        defer { EVP_CIPHER_CTX_free(ctx) }
        var len: Int32 = 0
        var ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce) == 1
        ok = ok && EVP_EncryptUpdate(ctx, nil, &len, aad, Int32(aad.count)) == 1
        var written: Int32 = 0
        ok = ok && plaintext.withUnsafeBufferPointer { p in
            EVP_EncryptUpdate(ctx, &ciphertext, &written, p.baseAddress, Int32(p.count)) == 1
        }
        var finalLen: Int32 = 0
        ok = ok && ciphertext.withUnsafeMutableBufferPointer { p in
            EVP_EncryptFinal_ex(ctx, p.baseAddress! + Int(written), &finalLen) == 1
        }
        ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, &tag) == 1
        precondition(ok, "AES-256-GCM encryption failed")
        return [Self.version] + nonce + ciphertext[0..<Int(written + finalLen)] + tag
    }

    public func open(_ sealed: [UInt8], context: String) throws -> [UInt8] {
        guard sealed.count >= 1 + 12 + 16, sealed[0] == Self.version else {
            throw StoreError(.wrongMasterKey, "a stored secret is not in a format this version can open")
        }
        let nonce = Array(sealed[1..<13])
        let body = Array(sealed[13..<(sealed.count - 16)])
        var tag = Array(sealed[(sealed.count - 16)...])
        let aad = Array(context.utf8)
        var plaintext = [UInt8](repeating: 0, count: body.count + 16)
        let ctx = EVP_CIPHER_CTX_new()!
        defer { EVP_CIPHER_CTX_free(ctx) }
        var len: Int32 = 0
        var ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce) == 1
        ok = ok && EVP_DecryptUpdate(ctx, nil, &len, aad, Int32(aad.count)) == 1
        var written: Int32 = 0
        ok = ok && body.withUnsafeBufferPointer { p in
            EVP_DecryptUpdate(ctx, &plaintext, &written, p.baseAddress, Int32(p.count)) == 1
        }
        ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1
        var finalLen: Int32 = 0
        ok = ok && plaintext.withUnsafeMutableBufferPointer { p in
            EVP_DecryptFinal_ex(ctx, p.baseAddress! + Int(written), &finalLen) == 1
        }
        guard ok else {
            throw StoreError(.wrongMasterKey, "a stored secret does not open with this master key (LLM_PROXY_MASTER_KEY is not the one it was sealed with)")
        }
        return Array(plaintext[0..<Int(written + finalLen)])
    }

    public func sealString(_ s: String, context: String) -> [UInt8] { seal(Array(s.utf8), context: context) }

    public func openString(_ sealed: [UInt8], context: String) throws -> String {
        String(decoding: try open(sealed, context: context), as: UTF8.self)
    }

    /// A value stored beside the data: if it opens, this is the master key the store was set up with.
    public func makeVerifier() -> String { Crypto.hex(seal(Self.verifierPlaintext, context: "verifier")) }

    public func check(verifier: String) throws {
        guard let sealed = Crypto.unhex(verifier), (try? open(sealed, context: "verifier")) == Self.verifierPlaintext else {
            throw StoreError(.wrongMasterKey,
                             "the master key does not match the one this store was set up with; set LLM_PROXY_MASTER_KEY to the original key (or rotate it with rotate-master-key)")
        }
    }
}
