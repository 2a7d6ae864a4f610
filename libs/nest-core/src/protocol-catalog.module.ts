import { Global, Logger, Module } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { ProtocolCatalog } from '@kc/protocols';
import { ContraindicationRecorder } from './contraindication-recorder';
import { OrderHolds } from './order-holds';
import { PatientDataLoader } from './patient-data-loader';
import { PlanDefinitions } from './plan-definitions';
import { ProtocolChangeBroadcast } from './protocol-change-broadcast';
import { WriteConformanceCheck } from './write-conformance-check';

/**
 * Loads and validates fhir-profiles/ once per process. A broken file is left out and logged; /health reports the
 * service degraded with the problems, and GET /protocols lists what is unavailable. With it, the reader of the
 * patient data the protocols' inputs declare, the recorder of the contraindications found on it, and
 * the holds they put on orders approved before, and where a plan's definition is found again (PlanDefinitions), and,
 * with FHIR_WRITE_CONFORMANCE on, the check of every write against the profiles (WriteConformanceCheck).
 */
@Global()
@Module({
  providers: [
    {
      provide: ProtocolCatalog,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => {
        const catalog = ProtocolCatalog.fromDirectory(config.profilesDir);
        for (const problem of catalog.problems)
          new Logger('ProtocolCatalog').warn({ msg: 'profile unavailable', problem });
        return catalog;
      },
    },
    PatientDataLoader,
    ContraindicationRecorder,
    OrderHolds,
    PlanDefinitions,
    ProtocolChangeBroadcast,
    WriteConformanceCheck,
  ],
  exports: [
    ProtocolCatalog,
    PatientDataLoader,
    ContraindicationRecorder,
    OrderHolds,
    PlanDefinitions,
    ProtocolChangeBroadcast,
    WriteConformanceCheck,
  ],
})
export class ProtocolCatalogModule {}
