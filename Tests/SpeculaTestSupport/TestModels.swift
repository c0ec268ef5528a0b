import Foundation

/// Where the test suites find the pinned models (fetched by scripts/fetch-models), and whether they must be there.
public enum TestModels {
    /// `$SPECULA_MODELS`, else `~/.cache/specula/models`.
    public static let directory: String = {
        if let path = ProcessInfo.processInfo.environment["SPECULA_MODELS"], !path.isEmpty { return path }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/specula/models").path
    }()

    /// With CI=true a missing model fails the model tests instead of skipping them.
    public static var required: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }
}
