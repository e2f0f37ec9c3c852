public enum LLMProxyVersion {
    public static let current = "0.1.0"
}
