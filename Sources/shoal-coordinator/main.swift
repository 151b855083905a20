import ArgumentParser
import Foundation
import Logging

struct ShoalCoordinator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shoal-coordinator",
        abstract: "Run Hugging Face decoder models on one machine or across Shoal workers.",
        subcommands: [Generate.self, Bench.self, BenchAllReduce.self, BenchLocal.self, BenchKernels.self, SynthModel.self, Quantize.self, Accuracy.self, Ping.self])
}

LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
signal(SIGPIPE, SIG_IGN)
ShoalCoordinator.main()
