import Testing
@testable import Node

/// The multipart reader finds a form field's value beside any file, and gives nil for what is not a form.
@Suite struct MultipartFormTests {
    static func form(_ boundary: String, _ parts: [(headers: String, content: String)], preamble: String = "") -> [UInt8] {
        var s = preamble
        for p in parts { s += "--\(boundary)\r\n\(p.headers)\r\n\r\n\(p.content)\r\n" }
        return Array((s + "--\(boundary)--\r\n").utf8)
    }

    @Test func theBoundaryComesFromAFormContentTypeOnly() {
        #expect(MultipartForm.boundary(contentType: "multipart/form-data; boundary=abc123") == "abc123")
        #expect(MultipartForm.boundary(contentType: "Multipart/Form-Data;boundary=\"a b:c\"") == "a b:c")
        #expect(MultipartForm.boundary(contentType: "multipart/form-data; charset=utf-8; BOUNDARY=x") == "x")
        #expect(MultipartForm.boundary(contentType: "application/json") == nil)
        #expect(MultipartForm.boundary(contentType: "multipart/form-data") == nil)
        #expect(MultipartForm.boundary(contentType: "multipart/form-data; boundary=") == nil)
        #expect(MultipartForm.boundary(contentType: Substring("multipart/form-data; boundary=" + String(repeating: "x", count: 71))) == nil)
    }

    @Test func aFieldIsFoundBeforeOrAfterTheFile() {
        let audio = String(repeating: "\r\n--not-it\r\n", count: 300) + "RIFF"
        let file = (headers: "Content-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav", content: audio)
        let model = (headers: "Content-Disposition: form-data; name=\"model\"", content: "whisper-1")
        for parts in [[model, file], [file, model], [file, (headers: "content-disposition: form-data; name=model", content: "gpt-4o-transcribe")]] {
            let body = Self.form("b0und", parts, preamble: "ignored preamble\r\n")
            let expected = parts.contains { $0.content == "gpt-4o-transcribe" } ? "gpt-4o-transcribe" : "whisper-1"
            #expect(MultipartForm.field(named: "model", in: body, boundary: "b0und") == expected)
        }
    }

    @Test func filesTooLongValuesAndBrokenFormsGiveNothing() {
        let asFile = Self.form("b", [(headers: "Content-Disposition: form-data; name=\"model\"; filename=\"m.txt\"", content: "x")])
        #expect(MultipartForm.field(named: "model", in: asFile, boundary: "b") == nil)
        let long = Self.form("b", [(headers: "Content-Disposition: form-data; name=\"model\"", content: String(repeating: "m", count: 257))])
        #expect(MultipartForm.field(named: "model", in: long, boundary: "b") == nil)
        let other = Self.form("b", [(headers: "Content-Disposition: form-data; name=\"prompt\"", content: "model")])
        #expect(MultipartForm.field(named: "model", in: other, boundary: "b") == nil)
        let unterminated = Array("--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1".utf8)
        #expect(MultipartForm.field(named: "model", in: unterminated, boundary: "b") == nil)
        #expect(MultipartForm.field(named: "model", in: Array("--b--\r\n".utf8), boundary: "b") == nil)
        #expect(MultipartForm.field(named: "model", in: [], boundary: "b") == nil)
        let wrongBoundary = Self.form("b", [(headers: "Content-Disposition: form-data; name=\"model\"", content: "whisper-1")])
        #expect(MultipartForm.field(named: "model", in: wrongBoundary, boundary: "c") == nil)
    }
}
