import Foundation
import Testing
import Yams

/// Cluster/docker-compose.yml read the way `docker compose` reads it (defaults interpolated),
/// reduced to what the cluster's shape depends on. No Docker engine runs in CI, so this and the
/// namespace run of the same topology (NetnsClusterTests) are what stand in for `compose up`.
struct ComposeTopology {
    struct Service {
        var name: String
        var command: [String]
        var environment: [String: String]
        var replicas: Int
        var networks: [String]
        var capabilities: [String]
        var image: String?
        var dockerfile: String?
        var buildContext: String?
        /// (source, target, read-only) of each bind mount.
        var binds: [(source: String, target: String, readOnly: Bool)]

        /// The value after `flag` in the command, e.g. `--listen`.
        func option(_ flag: String) -> String? {
            guard let i = command.firstIndex(of: flag), i + 1 < command.count else { return nil }
            return command[i + 1]
        }
    }

    var services: [String: Service]
    var networks: [String: [String: Any]]

    static let file = Repo.path("Cluster/docker-compose.yml")

    static func load(environment: [String: String] = [:]) throws -> ComposeTopology {
        let text = try String(contentsOf: file, encoding: .utf8)
        guard let root = try Yams.load(yaml: text) as? [String: Any] else { throw OpsFailure("\(file.path): not a YAML mapping") }
        guard let services = root["services"] as? [String: Any] else { throw OpsFailure("\(file.path): no services") }
        func string(_ v: Any?) -> String? {
            guard let v else { return nil }
            return composeInterpolate((v as? String) ?? "\(v)", environment: environment)
        }
        var parsed: [String: Service] = [:]
        for (name, value) in services {
            guard let s = value as? [String: Any] else { throw OpsFailure("service \(name) is not a mapping") }
            var env: [String: String] = [:]
            if let map = s["environment"] as? [String: Any] {
                for (k, v) in map { env[k] = string(v) ?? "" }
            } else if let list = s["environment"] as? [String] {
                for item in list {
                    let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                    env[parts[0]] = parts.count > 1 ? composeInterpolate(parts[1], environment: environment) : ""
                }
            }
            let command = (s["command"] as? [Any])?.compactMap(string) ?? []
            let replicas = ((s["deploy"] as? [String: Any])?["replicas"]).flatMap(string).flatMap { Int($0) } ?? 1
            let networks = (s["networks"] as? [String]) ?? ((s["networks"] as? [String: Any]).map { Array($0.keys) } ?? [])
            let build = s["build"] as? [String: Any]
            var binds: [(String, String, Bool)] = []
            for v in (s["volumes"] as? [Any]) ?? [] {
                if let m = v as? [String: Any], string(m["type"]) == "bind", let source = string(m["source"]), let target = string(m["target"]) {
                    binds.append((source, target, (m["read_only"] as? Bool) ?? false))
                } else if let short = v as? String {
                    let parts = composeInterpolate(short, environment: environment).split(separator: ":").map(String.init)
                    if parts.count >= 2 { binds.append((parts[0], parts[1], parts.count > 2 && parts[2].split(separator: ",").contains("ro"))) }
                }
            }
            parsed[name] = Service(name: name, command: command, environment: env, replicas: replicas, networks: networks,
                                   capabilities: (s["cap_add"] as? [String]) ?? [], image: string(s["image"]),
                                   dockerfile: build.flatMap { string($0["dockerfile"]) }, buildContext: build.flatMap { string($0["context"]) },
                                   binds: binds)
        }
        return ComposeTopology(services: parsed, networks: (root["networks"] as? [String: [String: Any]]) ?? [:])
    }

    var coordinator: Service? { services["coordinator"] }
    var worker: Service? { services["worker"] }

    /// The worker port from `--listen tcp://0.0.0.0:PORT`.
    var workerPort: Int? {
        worker?.option("--listen").flatMap { $0.split(separator: ":").last }.flatMap { Int($0) }
    }
}

@Suite("docker compose cluster files")
struct ComposeFileTests {
    @Test func namesACoordinatorAndAtLeastTwoWorkers() throws {
        let compose = try ComposeTopology.load()
        let coordinator = try #require(compose.coordinator, "no coordinator service")
        let worker = try #require(compose.worker, "no worker service")
        #expect(worker.replicas >= 2, "the default cluster should have at least two workers")
        #expect(worker.command.first == "shoal-worker")
        #expect(worker.option("--listen") == "tcp://0.0.0.0:\(compose.workerPort ?? -1)")
        #expect(coordinator.command == ["shoal-cluster", "idle"])
        // The worker count is one variable, and the coordinator waits for that many.
        let four = try ComposeTopology.load(environment: ["SHOAL_WORKERS": "4"])
        #expect(four.worker?.replicas == 4)
        #expect(four.coordinator?.environment["SHOAL_WORKERS_EXPECTED"] == "4")
        #expect(coordinator.environment["SHOAL_WORKER_HOST"] == "worker", "discovery looks up the worker service's DNS name")
        #expect(coordinator.environment["SHOAL_WORKER_PORT"] == "\(compose.workerPort ?? -1)")
    }

    @Test func mountsTheModelReadOnlyWhereWorkersLookForIt() throws {
        let compose = try ComposeTopology.load(environment: ["SHOAL_MODEL_DIR": "/data/llama"])
        let coordinator = try #require(compose.coordinator)
        let worker = try #require(compose.worker)
        for service in [coordinator, worker] {
            let model = try #require(service.binds.first { $0.source == "/data/llama" }, "\(service.name) does not mount SHOAL_MODEL_DIR")
            #expect(model.readOnly, "\(service.name) mounts the model writable")
            #expect(model.target == "/models/model")
        }
        // Workers find the coordinator's model by directory name under --model-dir.
        #expect(worker.option("--model-dir") == "/models")
        #expect(coordinator.environment["SHOAL_MODEL"] == "/models/model")
        // The default model is the bundled one, and it exists relative to the compose file.
        let defaults = try ComposeTopology.load()
        let source = try #require(defaults.worker?.binds.first { $0.target == "/models/model" }?.source)
        let resolved = Repo.path("Cluster").appendingPathComponent(source).standardizedFileURL
        #expect(FileManager.default.fileExists(atPath: resolved.appendingPathComponent("config.json").path), "\(resolved.path) has no model")
    }

    @Test func privateNetworkAndNetemSwitch() throws {
        let compose = try ComposeTopology.load(environment: ["NETEM": "delay 5ms rate 100mbit"])
        #expect(compose.networks.count == 1)
        let (name, network) = try #require(compose.networks.first)
        #expect(network["internal"] as? Bool == true, "the cluster network should have no route out")
        for service in compose.services.values {
            #expect(service.networks == [name], "\(service.name) is not (only) on the private network")
            #expect(service.capabilities.contains("NET_ADMIN"), "\(service.name) cannot run tc without NET_ADMIN")
            #expect(service.environment["NETEM"] == "delay 5ms rate 100mbit", "\(service.name) does not pass NETEM on")
        }
        let off = try ComposeTopology.load()
        #expect(off.services.values.allSatisfy { $0.environment["NETEM"] == "" }, "network emulation should be off by default")
    }

    @Test func oneImageBuiltByTheMultiStageDockerfile() throws {
        let compose = try ComposeTopology.load()
        for service in compose.services.values {
            #expect(service.dockerfile == "Cluster/Dockerfile")
            #expect(service.buildContext == "..")
            #expect(service.image == "shoal:latest")
        }
        let dockerfile = try String(contentsOf: Repo.path("Cluster/Dockerfile"), encoding: .utf8)
        let stages = dockerfile.split(separator: "\n").filter { $0.hasPrefix("FROM ") }
        #expect(stages.count == 2)
        #expect(stages.first?.contains("swift:") == true && stages.first?.contains(" AS build") == true)
        #expect(stages.last?.contains("debian:bookworm-slim") == true)
        #expect(dockerfile.contains("--static-swift-stdlib --product shoal-worker"))
        #expect(dockerfile.contains("--static-swift-stdlib --product shoal-coordinator"))
        #expect(dockerfile.contains("libzmq5") && dockerfile.contains("iproute2"))
        // Everything the Dockerfile copies from the repository exists and is executable.
        for script in ["Cluster/entrypoint.sh", "Cluster/shoal-cluster"] {
            #expect(dockerfile.contains("COPY \(script) "))
            #expect(FileManager.default.isExecutableFile(atPath: Repo.path(script).path), "\(script) is not executable")
        }
    }
}
