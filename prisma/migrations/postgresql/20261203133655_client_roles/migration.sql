-- CreateTable
CREATE TABLE "ClientRole" (
    "clientId" TEXT NOT NULL,
    "roleId" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ClientRole_pkey" PRIMARY KEY ("clientId","roleId")
);

-- CreateIndex
CREATE INDEX "ClientRole_roleId_idx" ON "ClientRole"("roleId");

-- AddForeignKey
ALTER TABLE "ClientRole" ADD CONSTRAINT "ClientRole_clientId_fkey" FOREIGN KEY ("clientId") REFERENCES "Client"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ClientRole" ADD CONSTRAINT "ClientRole_roleId_fkey" FOREIGN KEY ("roleId") REFERENCES "Role"("id") ON DELETE CASCADE ON UPDATE CASCADE;
