import ClusterPlan
import Foundation
import Runtime
import Testing

struct ClusterFileTests {
    @Test func parsesAddressesWeightsAndThePlan() throws {
        setenv("SHOAL_TEST_TOKEN", "t0k", 1)
        let f = try ClusterFile.parse("""
        workers:
          - tcp://10.0.0.1:5601
          - address: tcp://10.0.0.2:5601
            weight: 2
        tp: 2
        allreduce: ring
        sync: bf16
        token: ${SHOAL_TEST_TOKEN}
        """)
        #expect(f.workers == ["tcp://10.0.0.1:5601", "tcp://10.0.0.2:5601"])
        #expect(f.weights == [1, 2] && f.tp == 2 && f.allReduce == "ring" && f.sync == "bf16" && f.token == "t0k")
        let spec = try ClusterSpec(file: f)
        #expect(spec.allReduce == .fixed(.ring) && spec.sync == .bf16 && spec.split == [1, 2])
        #expect(try ClusterFile.parse(f.yaml()) == f)
    }

    @Test func errorsNameTheField() {
        #expect { try ClusterFile.parse("workers: []") } throws: { "\($0)".contains("workers") }
        #expect { try ClusterFile.parse("workers: [a]\ntp: two") } throws: { "\($0)".contains("'tp'") }
        #expect { try ClusterFile.parse("workers: [a]\nthreads: 3") } throws: { "\($0)".contains("unknown field 'threads'") }
        #expect { try ClusterFile.parse("workers:\n  - address: a\n    weight: -1") } throws: { "\($0)".contains("weight") }
        #expect { try ClusterSpec.parseAllReduce("tree") } throws: { "\($0)".contains("tree") }
    }
}
