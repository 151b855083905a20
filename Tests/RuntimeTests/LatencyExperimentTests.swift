import ClusterPlan
import Foundation
import Logging
import Model
import Runtime
import Testing
import Transport

/// `bench` over real workers on loopback: every figure of a row is filled from what the workers
/// measured, and the bytes they counted on their links match the plan's analytical count (plus
/// frame headers, never less).
@Suite(.serialized)
final class LatencyExperimentTests {
    let workers: [WorkerProcess]
    let transport: ZMQTransport

    init() throws {
        workers = try (0 ..< 3).map { _ in try WorkerProcess() }
        transport = try ZMQTransport()
    }

    deinit { stopAll(workers) }

    @Test func rowsAddUpForEveryKindOfPlan() throws {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let checkpoint = try Checkpoint(directory: Paths.model("tiny-llama"))
        let config = checkpoint.config
        let experiment = LatencyExperiment(checkpoint: checkpoint, workers: workers.map(\.address), token: "", promptLength: 6,
                                           generate: 5, repeats: 1, sequences: 2, microBatches: 2, logger: logger)
        let plans = LatencyExperiment.sweep(nodes: [1, 2, 3], tp: nil, pp: [1, 2], allReduce: [.fixed(.star), .fixed(.ring), .fixed(.mesh), .auto], sync: [.f32, .q8_0])
        // 1 node; 2 nodes: TP 2 (4 choices x 2 syncs), PP 2; 3 nodes: TP 3 (8).
        #expect(plans.count == 1 + 8 + 1 + 8)
        var ran = 0
        for plan in plans where plan.nodes == 1 || plan.pp == 2 || plan.sync == .q8_0 || plan.allReduce == .fixed(.ring) || plan.allReduce == .auto {
            let row = try experiment.run(plan, transport: transport)
            ran += 1
            let what = plan.description
            #expect(row.per_node.count == plan.nodes, "\(what)")
            #expect(row.tokens_per_s > 0 && row.tpot_ms_p50 > 0 && row.ttft_ms_p50 > 0 && row.compute_ms_per_token > 0, "\(what)")
            #expect(row.tpot_ms_p90 >= row.tpot_ms_p50, "\(what)")
            #expect((row.allreduce_us_p50 > 0) == (plan.tp > 1), "\(what): all-reduce p50 \(row.allreduce_us_p50)")
            // `auto` rows name the algorithm the cluster picked, and are counted for it.
            let picked = AllReduceAlgorithm(rawValue: String(row.allreduce.split(separator: ":").last!))
            #expect(picked != nil && (plan.allReduce == .auto) == row.allreduce.hasPrefix("auto:"), "\(what): \(row.allreduce)")
            let analytic = LatencyExperiment.analyticBytesPerToken(config: config, plan: plan, algorithm: picked)
            #expect(row.bytes_per_token_analytic == analytic)
            // Messages per token on the busiest link: 2 all-reduces per layer (each at most 2(N-1)
            // frames sets on a hub) and the stage boundary; each carries a header under 160 bytes.
            let messages = Double(2 * config.layerCount * 2 * max(plan.tp - 1, 0) + 2 * (plan.pp - 1))
            #expect(row.bytes_per_token_per_node >= analytic && row.bytes_per_token_per_node <= analytic + 160 * messages,
                    "\(what): \(row.bytes_per_token_per_node) bytes per token vs \(analytic) analytical")
            if plan.nodes == 1 { #expect(analytic == 0 && row.comm_ms_per_token == 0, "\(what)") }
        }
        #expect(ran == 1 + 1 + 2 * (4 + 2)) // 1 node, PP 2, per TP size: 4 with q8_0, ring and auto with f32
        // Hand-checked counts for tiny-llama (hidden 256, 4 layers): f32 star among 2 moves
        // 2 x 4 x 2 x 1 x 1024 bytes; PP 2 passes one f32 hidden state.
        #expect(LatencyExperiment.analyticBytesPerToken(config: config, plan: .init(nodes: 2, tp: 2, pp: 1, allReduce: .fixed(.star), sync: .f32)) == 16384)
        #expect(LatencyExperiment.analyticBytesPerToken(config: config, plan: .init(nodes: 2, tp: 1, pp: 2, allReduce: .fixed(.star), sync: .f32)) == 1024)
        #expect(LatencyExperiment.analyticBytesPerToken(config: config, plan: .init(nodes: 3, tp: 1, pp: 3, allReduce: .fixed(.star), sync: .f32)) == 2048)
    }
}
